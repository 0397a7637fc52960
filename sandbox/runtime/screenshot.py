"""Screenshots of a web page (usually the session's preview) with the sandbox's headless Chromium.

The agent's ``screenshot`` tool runs ``python -m sandbox.runtime.screenshot`` and uploads the PNG it
writes. The browser is Debian's ``chromium`` from the image: nothing is downloaded (Playwright would
want to fetch its own), so it is driven over the DevTools protocol with the ``websockets`` client.

Each capture starts a fresh browser (a temporary profile, its own process group) and ends it whatever
happens: screenshots are rare, and a browser kept warm would hold hundreds of MB for nothing. One
``timeout_s`` bounds every step, the browser's start included.

Errors (messages are meant for the agent)::

    ScreenshotError   a bad request, an unreachable page, no such element, a timeout
     └─ NoBrowser     no Chromium in this sandbox
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import math
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

from sandbox.runtime.devtools import DevTools, DevToolsError, open_devtools

BROWSER_VARIABLE = "INSPECT_CHROMIUM"
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
NO_BROWSER = (
    "no Chromium in this sandbox: install Debian's chromium (apt install chromium) in the image "
    f"or set {BROWSER_VARIABLE}"
)
# Off-network flags: without them Chromium keeps calling Google services this sandbox cannot reach.
# --no-sandbox: the sandbox is the confinement (bwrap or Modal); Chromium's own needs namespaces it lacks.
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
    "--remote-debugging-port=0",
)  # fmt: skip
MIN_SIDE, MAX_WIDTH, MAX_HEIGHT = 200, 3840, 2160  # the viewport
MAX_FULL_HEIGHT = 16384  # a full page or an element is cut there
MAX_SOCKET_DIR = 107 - len("/org.chromium.Chromium.XXXXXX/SingletonSocket")
POLL_S = 0.05
KILL_WAIT_S = 5.0
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class ScreenshotError(Exception):
    """The screenshot could not be taken; the message says why, for the agent."""


class NoBrowser(ScreenshotError):
    """No Chromium to run."""


@dataclass(frozen=True)
class Shot:
    png: bytes
    width: int  # pixels (CSS pixels: the device scale factor is 1)
    height: int


@dataclass
class _Progress:
    step: str  # what a timeout interrupted, for its message


async def capture(
    url: str,
    *,
    width: int = 1280,
    height: int = 800,
    full_page: bool = False,
    selector: str | None = None,
    timeout_s: float = 30.0,
    browser: str | None = None,
) -> Shot:
    """A PNG of ``url`` in a ``width`` x ``height`` viewport: the viewport, the whole page
    (``full_page``), or the first element matching the CSS ``selector``.

    ``browser``: the Chromium to run (default: ``find_browser()``)."""
    check_request(url, width=width, height=height, timeout_s=timeout_s)
    binary = browser or find_browser()
    progress = _Progress("starting Chromium")
    try:
        async with asyncio.timeout(timeout_s), _browser(binary) as endpoint, open_devtools(endpoint) as tools:
            png = await _shoot(tools, progress, url, width, height, full_page=full_page, selector=selector)
    except DevToolsError as exc:
        raise ScreenshotError(str(exc)) from exc
    except TimeoutError:
        raise ScreenshotError(f"the screenshot took over {timeout_s:g}s (stopped while {progress.step})") from None
    shot_width, shot_height = png_size(png)
    return Shot(png=png, width=shot_width, height=shot_height)


def check_request(url: str, *, width: int, height: int, timeout_s: float) -> None:
    """Refuse what cannot be captured before any browser starts."""
    parts = urlsplit(url)
    if url != "about:blank" and (parts.scheme not in ("http", "https") or not parts.hostname):
        raise ScreenshotError(f"only http(s) URLs can be captured, not {url[:100]!r}")
    if not MIN_SIDE <= width <= MAX_WIDTH or not MIN_SIDE <= height <= MAX_HEIGHT:
        raise ScreenshotError(
            f"the viewport must be {MIN_SIDE}..{MAX_WIDTH} pixels wide and {MIN_SIDE}..{MAX_HEIGHT} high, "
            f"not {width}x{height}"
        )
    if not 0 < timeout_s <= 600:
        raise ScreenshotError("the timeout must be over 0 and at most 600 seconds")


def find_browser(env: Mapping[str, str] = os.environ) -> str:
    """``$INSPECT_CHROMIUM`` if set, else the first Chromium on ``PATH``."""
    chosen = env.get(BROWSER_VARIABLE)
    if chosen:
        found = shutil.which(chosen, path=env.get("PATH", os.defpath))
        if found is None:
            raise NoBrowser(f"{BROWSER_VARIABLE}={chosen} is not an executable; {NO_BROWSER}")
        return found
    for name in BROWSERS:
        found = shutil.which(name, path=env.get("PATH", os.defpath))
        if found is not None:
            return found
    raise NoBrowser(NO_BROWSER)


def browser_args(profile: Path, *, shm_usable: bool) -> list[str]:
    """Chromium's arguments, with ``profile`` as its (fresh) user data directory."""
    # Under bubblewrap's --dev /dev, /dev/shm is an empty directory owned by root, which the sandbox's
    # user cannot write. Chromium 156 coped there without the flag (checked), but it is what Chromium
    # offers for an unusable /dev/shm (Debian's launcher adds it for a small one): its shared memory
    # files then go to $TMPDIR, which is ours.
    shm = [] if shm_usable else ["--disable-dev-shm-usage"]
    return [*FLAGS, *shm, f"--user-data-dir={profile}"]


def shm_usable(path: Path = Path("/dev/shm")) -> bool:  # noqa: S108 - only looked at
    return path.is_dir() and os.access(path, os.W_OK | os.X_OK)


def png_size(png: bytes) -> tuple[int, int]:
    """A PNG's width and height, from its header chunk."""
    if not png.startswith(PNG_SIGNATURE) or png[12:16] != b"IHDR":
        raise ScreenshotError("Chromium returned something that is not a PNG")
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


@contextlib.asynccontextmanager
async def _browser(binary: str) -> AsyncIterator[str]:
    """A running Chromium for the block; yields its DevTools websocket URL. Afterwards its whole
    process group is killed (renderers and helpers too) and its files removed."""
    work = _work_dir()
    profile, log_path = work / "profile", work / "chromium.log"
    process: asyncio.subprocess.Process | None = None
    try:
        with log_path.open("wb") as log_file:  # a file, not a pipe: nobody has to keep reading it
            try:
                process = await asyncio.create_subprocess_exec(
                    binary,
                    *browser_args(profile, shm_usable=shm_usable()),
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=log_file,
                    start_new_session=True,
                    env=_browser_environment(work),
                )
            except OSError as exc:
                raise NoBrowser(f"cannot run {binary}: {exc.strerror}; {NO_BROWSER}") from exc
        yield await _devtools_endpoint(process, profile / "DevToolsActivePort", log_path)
    finally:
        if process is not None:
            await _kill(process)
        # small (a fresh profile, a few MB); done inline so that a cancellation cannot skip it
        shutil.rmtree(work, ignore_errors=True)


def _work_dir() -> Path:
    """A fresh directory for one browser's files: in $TMPDIR, or in /tmp when $TMPDIR is so deep that
    Chromium's singleton socket (``<work>/t/org.chromium.Chromium.XXXXXX/SingletonSocket``) would
    not fit in a Unix socket's path (107 bytes): Chromium aborts on start then."""
    deep = len(tempfile.gettempdir()) + len("/inspect-shot-XXXXXXXX/t") > MAX_SOCKET_DIR
    return Path(tempfile.mkdtemp(prefix="inspect-shot-", dir="/tmp" if deep else None))  # noqa: S108 - mkdtemp: 0700


def _browser_environment(work: Path) -> dict[str, str]:
    """Our environment with a home and a temporary directory inside ``work``: Chromium also writes
    outside its profile (crash reports under ~/.config, a singleton socket in $TMPDIR that a killed
    browser leaves behind), and none of that should outlive the capture or land in the sandbox's
    home, which is snapshotted with the session."""
    home, temp = work / "home", work / "t"
    temp.mkdir()
    return {
        **os.environ,
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "TMPDIR": str(temp),
    }


async def _devtools_endpoint(process: asyncio.subprocess.Process, port_file: Path, log_path: Path) -> str:
    """Chromium writes the port it chose (``--remote-debugging-port=0``) and the browser's path to
    ``DevToolsActivePort`` in its profile once it listens: poll for it (bounded by the caller)."""
    while True:
        if process.returncode is not None:
            output = log_path.read_text(errors="replace").strip().splitlines()[-5:]  # noqa: ASYNC240 - once, small
            raise ScreenshotError(f"Chromium exited ({process.returncode}) on start: " + " | ".join(output))
        with contextlib.suppress(OSError):
            lines = port_file.read_text().splitlines()  # noqa: ASYNC240 - a few bytes, every 50 ms
            if len(lines) >= 2 and lines[0].isdigit() and lines[1].startswith("/devtools/browser/"):
                return f"ws://127.0.0.1:{lines[0]}{lines[1]}"
        await asyncio.sleep(POLL_S)


async def _kill(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(process.wait(), KILL_WAIT_S)


async def _shoot(
    tools: DevTools, progress: _Progress, url: str, width: int, height: int, *, full_page: bool, selector: str | None
) -> bytes:
    progress.step = "opening a page"
    target = await tools.call("Target.createTarget", {"url": "about:blank"})
    attached = await tools.call("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True})
    session = str(attached["sessionId"])
    metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}
    await tools.call("Emulation.setDeviceMetricsOverride", metrics, session=session)
    await tools.call("Page.enable", session=session)
    progress.step = f"loading {url}"
    tools.forget_events()  # a load event from here on is this navigation's
    navigated = await tools.call("Page.navigate", {"url": url}, session=session)
    if navigated.get("errorText"):
        raise ScreenshotError(f"cannot load {url}: {navigated['errorText']}")
    await tools.event("Page.loadEventFired", session=session)
    progress.step = "capturing"
    params: dict[str, Any] = {"format": "png"}
    clip = await _clip(tools, session, full_page=full_page, selector=selector)
    if clip is not None:
        params |= {"clip": {**clip, "scale": 1}, "captureBeyondViewport": True}
    shot = await tools.call("Page.captureScreenshot", params, session=session)
    return base64.b64decode(shot["data"])


async def _clip(tools: DevTools, session: str, *, full_page: bool, selector: str | None) -> dict[str, int] | None:
    """The page region to capture, in CSS pixels of the document; None: the viewport."""
    if selector is not None:
        box = await _element_box(tools, session, selector)
    elif full_page:
        metrics = await tools.call("Page.getLayoutMetrics", session=session)
        size = metrics["cssContentSize"]
        box = (0.0, 0.0, float(size["width"]), float(size["height"]))
    else:
        return None
    # whole pixels covering the box, cut at the bounds
    left, top = math.floor(box[0]), math.floor(box[1])
    right, bottom = math.ceil(box[0] + box[2]), math.ceil(box[1] + box[3])
    return {"x": left, "y": top, "width": min(right - left, MAX_WIDTH), "height": min(bottom - top, MAX_FULL_HEIGHT)}


async def _element_box(tools: DevTools, session: str, selector: str) -> tuple[float, float, float, float]:
    """(x, y, width, height) of the first element matching ``selector``, relative to the document."""
    expression = (
        f"(() => {{ const e = document.querySelector({json.dumps(selector)}); if (!e) return null;"
        " const r = e.getBoundingClientRect();"
        " return [r.left + window.scrollX, r.top + window.scrollY, r.width, r.height]; })()"
    )
    evaluated = await tools.call("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=session)
    if "exceptionDetails" in evaluated:  # a selector querySelector cannot parse
        details = evaluated["exceptionDetails"]
        reason = details.get("exception", {}).get("description") or details.get("text", "")
        raise ScreenshotError(f"bad selector {selector!r}: {str(reason).splitlines()[0] if reason else 'invalid'}")
    box = evaluated.get("result", {}).get("value")
    if box is None:
        raise ScreenshotError(f"no element matches {selector!r}")
    x, y, width, height = (float(v) for v in box)
    if width < 1 or height < 1:
        raise ScreenshotError(f"the element matching {selector!r} has no size ({width:g}x{height:g}): is it hidden?")
    return x, y, width, height


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # the caller reads one JSON line, even for bad arguments
        _fail(message)


def _fail(message: str) -> NoReturn:
    print(json.dumps({"error": message}), flush=True)
    sys.exit(1)


def main(argv: list[str] | None = None) -> int:
    """``--url URL --out PATH [--width N] [--height N] [--full-page] [--selector CSS] [--timeout S]``:
    writes the PNG, prints ``{"path", "width", "height", "bytes"}`` (or ``{"error"}``, exit 1)."""
    parser = _Parser(prog="python -m sandbox.runtime.screenshot", description="Screenshot a web page.")
    parser.add_argument("--url", required=True)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=800)
    parser.add_argument("--full-page", action="store_true")
    parser.add_argument("--selector")
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args(argv)
    try:
        shot = asyncio.run(
            capture(
                args.url,
                width=args.width,
                height=args.height,
                full_page=args.full_page,
                selector=args.selector,
                timeout_s=args.timeout,
            )
        )
        path = args.out.resolve()
        path.write_bytes(shot.png)
    except ScreenshotError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"cannot write {args.out}: {exc.strerror or exc}")
    print(json.dumps({"path": str(path), "width": shot.width, "height": shot.height, "bytes": len(shot.png)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
