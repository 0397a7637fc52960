"""The sandbox's screenshot tool with Debian's real Chromium: pages served on loopback, PNGs read back
pixel by pixel; refusals before any browser starts; the CLI the agent's tool spawns; and a capture
inside bubblewrap as a confined sandbox's user runs it."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from sandbox.providers.confine import ALWAYS_HIDDEN, Jail
from sandbox.runtime.screenshot import BROWSER_VARIABLE, NoBrowser, ScreenshotError, Shot, capture
from tests import png

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
BACKGROUND = (12, 150, 200)
BOX = (230, 40, 20)  # #box: 240 x 120 at (100, 300)
LOW = (40, 200, 60)  # #low on the tall page: 300 x 150 at (50, 2000), below the first screen
FOOT = (250, 220, 0)  # the tall page's last 100 px
TALL = 3000
PAGES = {
    "/": f"""<!doctype html><html><head><title>Shot</title></head>
<body style="margin:0; background: rgb{BACKGROUND}">
<h1 style="margin:0; font: 32px sans-serif; color: white">Inspect screenshot</h1>
<div id="box" style="position:absolute; left:100px; top:300px; width:240px; height:120px; background: rgb{BOX}"></div>
<p id="hidden" style="display:none">not shown</p>
</body></html>""",
    "/tall": f"""<!doctype html><html><body style="margin:0; background: rgb{BACKGROUND}">
<div style="height:{TALL - 100}px"></div><div style="height:100px; background: rgb{FOOT}"></div>
<div id="low" style="position:absolute; left:50px; top:2000px; width:300px; height:150px; background: rgb{LOW}"></div>
</body></html>""",
    "/huge": '<!doctype html><html><body style="margin:0"><div style="height:20000px"></div></body></html>',
    "/hanging": '<!doctype html><html><body>Loading forever<img src="/never"></body></html>',
}
NEVER = threading.Event()  # set when the module's server stops: /never answers only then

if not CHROMIUM.exists():
    pytest.skip("no /usr/bin/chromium (apt-get install chromium)", allow_module_level=True)


class _Pages(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/never":  # keeps the page that loads it from ever firing its load event
            NEVER.wait(60)
        page = PAGES.get(self.path)
        body = (page or "not found").encode()
        self.send_response(200 if page else 404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Pages)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    NEVER.set()
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def leaves_nothing(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Each capture's files go under a temporary directory of this test's (a short path: Chromium
    puts a Unix socket in there); afterwards none of them, and no live process of its browser, may
    remain."""
    temp = Path(tempfile.mkdtemp(prefix="shot-test-"))
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    try:
        yield temp
        assert list(temp.iterdir()) == []
        assert _live_processes_mentioning(str(temp)) == []
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def _live_processes_mentioning(text: str) -> list[str]:
    """Processes (not zombies) whose command line holds ``text``; a killed browser's processes may
    take a moment to die, so this waits up to 2 s for them to go."""
    for _ in range(40):
        found = []
        for entry in Path("/proc").iterdir():
            try:
                if text.encode() in (entry / "cmdline").read_bytes() and ") Z " not in (entry / "stat").read_text():
                    found.append(entry.name)
            except OSError:
                continue
        if not found:
            return []
        time.sleep(0.05)
    return found


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed once we return: nothing listens there


def _image(shot: Shot) -> png.Image:
    image = png.decode(shot.png)
    assert (image.width, image.height) == (shot.width, shot.height)
    return image


async def test_the_viewport_has_the_requested_size_and_shows_the_page(site: str) -> None:
    image = _image(await capture(f"{site}/", width=800, height=600))
    assert (image.width, image.height) == (800, 600)
    assert image.pixel(400, 580) == BACKGROUND
    assert image.pixel(220, 360) == BOX  # the box's middle
    assert image.pixel(99, 360) == BACKGROUND  # just left of it
    assert image.pixel(340, 360) == BACKGROUND  # just right of it


async def test_a_full_page_shot_is_as_tall_as_the_page(site: str) -> None:
    image = _image(await capture(f"{site}/tall", width=400, height=300, full_page=True))
    assert (image.width, image.height) == (400, TALL)
    assert image.pixel(200, 100) == BACKGROUND
    assert image.pixel(200, TALL - 50) == FOOT


async def test_a_selector_shot_is_just_the_element_even_below_the_first_screen(site: str) -> None:
    image = _image(await capture(f"{site}/tall", width=400, height=300, selector="#low"))
    assert (image.width, image.height) == (300, 150)
    for x, y in ((0, 0), (299, 0), (0, 149), (299, 149), (150, 75)):
        assert image.pixel(x, y) == LOW


async def test_a_full_page_shot_is_cut_at_16384_pixels(site: str) -> None:
    shot = await capture(f"{site}/huge", width=200, height=200, full_page=True)
    assert (shot.width, shot.height) == (200, 16384)


@pytest.mark.parametrize(
    ("selector", "error"),
    [
        ("#missing", "no element matches '#missing'"),
        ("#hidden", "the element matching '#hidden' has no size (0x0): is it hidden?"),
        ("##", "bad selector '##': SyntaxError: Failed to execute 'querySelector' on 'Document'"),
    ],
)
async def test_a_selector_that_shows_nothing_says_why(site: str, selector: str, error: str) -> None:
    with pytest.raises(ScreenshotError) as raised:
        await capture(f"{site}/", selector=selector)
    assert str(raised.value).startswith(error)


async def test_a_page_that_never_finishes_loading_times_out_and_the_browser_ends(site: str) -> None:
    with pytest.raises(ScreenshotError) as raised:
        await capture(f"{site}/hanging", timeout_s=3)
    assert str(raised.value) == f"the screenshot took over 3s (stopped while loading {site}/hanging)"


async def test_a_refused_connection_is_reported_clearly() -> None:
    url = f"http://127.0.0.1:{_closed_port()}/"
    with pytest.raises(ScreenshotError, match=f"cannot load {url}: net::ERR_CONNECTION_REFUSED"):
        await capture(url)


async def test_without_a_browser_the_error_says_how_to_get_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BROWSER_VARIABLE, "/nonexistent/chromium")
    with pytest.raises(NoBrowser, match=f"{BROWSER_VARIABLE}=/nonexistent/chromium is not an executable"):
        await capture("http://127.0.0.1:9/")
    monkeypatch.delenv(BROWSER_VARIABLE)
    monkeypatch.setenv("PATH", "")
    with pytest.raises(NoBrowser, match=r"no Chromium in this sandbox: install Debian's chromium \(apt install"):
        await capture("http://127.0.0.1:9/")


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "javascript:alert(1)", "data:text/html,hi", "ftp://example.com/", "http://"]
)
async def test_only_http_urls_are_captured(url: str) -> None:
    with pytest.raises(ScreenshotError, match="only http\\(s\\) URLs can be captured"):
        await capture(url)


@pytest.mark.parametrize(("width", "height"), [(100, 800), (1280, 5000), (4000, 800)])
async def test_the_viewport_is_bounded(width: int, height: int) -> None:
    with pytest.raises(ScreenshotError, match=r"the viewport must be 200\.\.3840 pixels wide and 200\.\.2160 high"):
        await capture("http://127.0.0.1:9/", width=width, height=height)


def _cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, list[str]]:
    done = subprocess.run(
        [sys.executable, "-m", "sandbox.runtime.screenshot", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    return done.returncode, done.stdout.splitlines()


def test_the_cli_writes_the_png_and_prints_one_json_line(site: str, tmp_path: Path, leaves_nothing: Path) -> None:
    out = tmp_path / "shot.png"
    code, lines = _cli(
        "--url", f"{site}/", "--out", str(out), "--width", "640", "--height", "480",
        env={**os.environ, "TMPDIR": str(leaves_nothing)},
    )  # fmt: skip
    assert code == 0
    assert [json.loads(line) for line in lines] == [
        {"path": str(out), "width": 640, "height": 480, "bytes": out.stat().st_size}
    ]
    assert png.decode(out.read_bytes()).pixel(220, 360) == BOX


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--url", "file:///etc/passwd", "--out", "x.png"], "only http(s) URLs can be captured"),
        (["--url", "http://127.0.0.1:9/"], "the following arguments are required: --out"),
        (["--url", "http://127.0.0.1:9/", "--out", "x.png", "--width", "wide"], "invalid int value: 'wide'"),
    ],
)
def test_the_cli_reports_an_error_as_one_json_line_and_exit_1(args: list[str], error: str) -> None:
    code, lines = _cli(*args)
    assert code == 1
    assert len(lines) == 1
    assert error in json.loads(lines[0])["error"]


# Inside the jail: serve a page on the jail's own loopback and run the CLI as the agent's tool would.
JAILED_DRIVER = f"""
import json, subprocess, sys, threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from sandbox.runtime.screenshot import shm_usable

Path("index.html").write_text('<body style="margin:0; background: rgb{BACKGROUND}"></body>')
server = ThreadingHTTPServer(("127.0.0.1", 0), SimpleHTTPRequestHandler)
threading.Thread(target=server.serve_forever, daemon=True).start()
url = f"http://127.0.0.1:{{server.server_address[1]}}/index.html"
done = subprocess.run(
    [sys.executable, "-m", "sandbox.runtime.screenshot", "--url", url, "--out", "shot.png", "--width", "300",
     "--height", "200"], capture_output=True, text=True, timeout=60,
)
print(json.dumps({{"code": done.returncode, "out": done.stdout, "shm_usable": shm_usable()}}))
"""


def test_a_confined_sandbox_user_can_take_a_screenshot(tmp_path: Path) -> None:
    """As the local provider confines a sandbox: bwrap with the system read-only, homes hidden, its own
    pid and network namespaces (loopback only), /dev from ``--dev`` and, under root, an unprivileged
    uid with no capabilities."""
    if shutil.which("bwrap") is None:
        pytest.skip("no bubblewrap here")
    root = tmp_path / "sandbox"
    (root / "home").mkdir(parents=True)
    (root / "driver.py").write_text(JAILED_DRIVER)
    (tmp_path / "relays").mkdir()
    uid = 209_999 if os.geteuid() == 0 else None  # outside the provider's uid range: no running sandbox has it
    if uid is not None:
        for path in (root, root / "home"):
            os.chown(path, uid, uid)
    inside = Path("/tmp/sandbox")
    jail = Jail(
        root=root,
        inside=inside,
        uid=uid,
        hide=ALWAYS_HIDDEN,
        # the runtime's code shown as the provider shows it (a checkout under /tmp is under the jail's own /tmp)
        show=tuple(
            {
                ROOT / "sandbox",
                Path(sys.prefix),
                Path(sys.base_prefix).resolve(),
                Path(sys.executable).resolve().parent.parent,
            }
        ),
        relays=tmp_path / "relays",  # a network namespace of its own, as sandboxes get
        env={"PATH": "/usr/bin:/bin", "HOME": str(inside / "home"), "PYTHONPATH": str(ROOT)},
    )
    done = subprocess.run(
        jail.command([sys.executable, str(inside / "driver.py")]),
        capture_output=True, text=True, timeout=90, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["code"] == 0, report
    assert json.loads(report["out"])["path"] == str(inside / "shot.png")
    assert report["shm_usable"] is False  # bwrap's --dev /dev: an empty /dev/shm owned by root
    image = png.decode((root / "shot.png").read_bytes())
    assert (image.width, image.height) == (300, 200)
    assert image.pixel(150, 100) == BACKGROUND
