"""A session's changes, file by file: its diff (``git diff --stat --patch``) cut into per-file
patches with their added and removed line counts (pure: no database, no sandbox)."""

from __future__ import annotations

from dataclasses import dataclass

MAX_PATCH = 20_000  # characters of one file's patch shown on the page
MAX_FILES = 300  # files listed (a vendored directory committed whole is a summary, not a page)


@dataclass(frozen=True)
class FileChange:
    path: str
    added: int
    removed: int
    patch: str
    status: str = "modified"  # added | deleted | renamed | modified | binary


def files_of(diff: str) -> list[FileChange]:
    """Each file's change, in the diff's order (the ``--stat`` summary before the first patch is skipped)."""
    files: list[FileChange] = []
    chunk: list[str] = []
    for line in diff.splitlines():
        if line.startswith("diff --git "):
            if chunk:
                files.append(_file(chunk))
            chunk = [line]
        elif chunk:
            chunk.append(line)
    if chunk:
        files.append(_file(chunk))
    if len(files) > MAX_FILES:
        rest = len(files) - MAX_FILES + 1
        files = [*files[: MAX_FILES - 1], FileChange(f"… and {rest} more files", 0, 0, "", "omitted")]
    return files


def _file(lines: list[str]) -> FileChange:
    header = lines[0].removeprefix("diff --git ")
    path = header.split(" b/", 1)[1] if " b/" in header else header.removeprefix("a/")
    status, added, removed, in_hunk = "modified", 0, 0, False
    for line in lines[1:]:
        if line.startswith("@@"):
            in_hunk = True
        elif not in_hunk:
            if line.startswith("new file mode"):
                status = "added"
            elif line.startswith("deleted file mode"):
                status = "deleted"
            elif line.startswith("rename to "):
                status, path = "renamed", line.removeprefix("rename to ")
            elif line.startswith("Binary files"):
                status = "binary"
            elif line.startswith("+++ b/"):
                path = line.removeprefix("+++ b/")
        elif line.startswith("+"):
            added += 1
        elif line.startswith("-"):
            removed += 1
    patch = "\n".join(lines)
    if len(patch) > MAX_PATCH:
        patch = patch[:MAX_PATCH] + "\n… (cut: the whole patch is in the pull request or the sandbox)"
    return FileChange(path=path, added=added, removed=removed, patch=patch, status=status)
