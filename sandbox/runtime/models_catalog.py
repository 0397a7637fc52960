"""OpenCode's model catalogue (models.dev data), cut down to the providers a sandbox uses.

Offline, OpenCode reads the catalogue embedded in its binary and processes all of it (4.4 MB, every
provider) on the first request that needs models — about 0.7 s of a sandbox's boot on a 2-core
machine. Given a file with only the enabled providers (``OPENCODE_MODELS_PATH``) it takes ~50 ms,
and nothing the agent can use is lost: ``enabled_providers`` hides the rest anyway.

The full catalogue is extracted once from the pinned binary (``python -m sandbox.runtime.models_catalog
<opencode binary> <out dir>``, run by ``make deps``) into one file per provider, so that a sandbox's
cut reads only its providers' files (the whole catalogue parses in ~60 ms; a boot need not pay it).
Where the extraction found nothing (another OpenCode build), sandboxes simply run without a cut.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

# The embedded catalogue is a JavaScript object literal whose first provider is deepinfra (pinned
# OpenCode 1.18.33); the scan below finds its end by balancing braces outside string literals.
MARKER = b'({deepinfra:{id:"deepinfra"'
EVALUATE = "process.stdout.write(JSON.stringify(eval('(' + require('fs').readFileSync(0, 'utf8') + ')')))"


class CatalogError(RuntimeError):
    pass


def object_literal(blob: bytes, start: int) -> bytes:
    """The ``{...}`` beginning at ``start``, with strings (", ', `) and escapes skipped."""
    depth, quote, i = 0, 0, start
    while i < len(blob):
        byte = blob[i]
        if quote:
            if byte == 0x5C:  # backslash: skip the escaped byte
                i += 1
            elif byte == quote:
                quote = 0
        elif byte in (0x22, 0x27, 0x60):
            quote = byte
        elif byte == 0x7B:
            depth += 1
        elif byte == 0x7D:
            depth -= 1
            if depth == 0:
                return blob[start : i + 1]
        i += 1
    raise CatalogError("the catalogue literal does not end")


def extract(binary: Path, *, node: str = "node") -> dict[str, Any]:
    """The catalogue embedded in an OpenCode binary, as models.dev's JSON shape."""
    blob = binary.read_bytes()
    at = blob.find(MARKER)
    if at < 0:
        raise CatalogError(f"no embedded model catalogue in {binary} (another OpenCode version?)")
    literal = object_literal(blob, at + 1)
    result = subprocess.run([node, "-e", EVALUATE], input=literal, capture_output=True, timeout=60, check=False)
    if result.returncode != 0:
        raise CatalogError(f"node could not read the catalogue: {result.stderr.decode(errors='replace')[:300]}")
    catalog = json.loads(result.stdout)
    if not isinstance(catalog, dict) or not all(isinstance(p, dict) and "models" in p for p in catalog.values()):
        raise CatalogError("the extracted catalogue does not look like models.dev data")
    return catalog


PROVIDER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # a file name, never a path


def split(catalog: dict[str, Any], directory: Path) -> None:
    """One ``<provider>.json`` per provider (what ``cut`` reads); the directory holds nothing else."""
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    for name, provider in catalog.items():
        if PROVIDER_NAME.match(name):
            (directory / f"{name}.json").write_text(json.dumps(provider))


def cut(directory: Path, providers: Iterable[str]) -> dict[str, Any]:
    """Only ``providers`` (unknown ones, like a configured OpenAI-compatible endpoint, are skipped)."""
    found = {}
    for name in sorted(set(providers)):
        path = directory / f"{name}.json"
        if PROVIDER_NAME.match(name) and path.is_file():
            found[name] = json.loads(path.read_text())
    return found


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m sandbox.runtime.models_catalog <opencode binary> <out dir>", file=sys.stderr)
        return 2
    try:
        catalog = extract(Path(argv[0]))
    except (CatalogError, OSError, subprocess.TimeoutExpired, json.JSONDecodeError) as exc:
        shutil.rmtree(argv[1], ignore_errors=True)  # an older OpenCode's catalogue must not stay behind
        print(f"models_catalog: {exc}; sandboxes will use OpenCode's own catalogue (slower boots)", file=sys.stderr)
        return 0  # not fatal: a missing cut costs boot time, nothing else
    split(catalog, Path(argv[1]))
    print(f"models_catalog: {len(catalog)} providers, {sum(len(p['models']) for p in catalog.values())} models")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
