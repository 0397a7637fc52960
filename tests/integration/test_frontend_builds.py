"""The frontend is built once per version and configuration, and a server starting with another
configuration from the same checkout leaves alone the pages a running one serves (``frontend.py``).

Before, every start rebuilt ``.web/build`` in place: the last server started rewrote the bundle the
others served, and their pages opened their socket at its port."""

from __future__ import annotations

import os
import re
from pathlib import Path

import httpx
import pytest

from inspect_app import frontend
from inspect_app.frontend import fingerprint
from tests.servers import RunningServer, start_server


def socket_port_in_pages(server: RunningServer) -> str:
    """The port the pages ``server`` serves open their state socket on, read from its bundle (and
    every script the page names is there to load)."""
    page = httpx.get(server.url + "/", timeout=10).text
    scripts = set(re.findall(r'"(/assets/[^"]+\.js)"', page))
    assert scripts
    for script in scripts:
        assert httpx.get(server.url + script, timeout=10).status_code == 200, script
    env_script = next(s for s in scripts if "/reflex-env-" in s)
    ports = set(re.findall(r"localhost:(\d+)", httpx.get(server.url + env_script, timeout=10).text))
    assert len(ports) == 1, ports
    return ports.pop()


def port_of(server: RunningServer) -> str:
    return server.url.rsplit(":", 1)[1]


def test_a_server_started_with_another_configuration_leaves_the_running_ones_pages_alone(tmp_path: Path) -> None:
    first = start_server(tmp_path / "first")
    try:
        assert socket_port_in_pages(first) == port_of(first)
        second = start_server(tmp_path / "second")  # another port: another bundle, built now
        try:
            assert "built" in second.log_tail(200)
            assert socket_port_in_pages(second) == port_of(second)
            assert socket_port_in_pages(first) == port_of(first)  # still its own, complete
        finally:
            second.stop()
    finally:
        first.stop()
    # Restarted on the same port, the server serves the build it made, without building again.
    again = start_server(tmp_path / "again", port=int(port_of(first)))
    try:
        log = again.log_tail(200)
        assert "(built earlier)" in log and "built " not in log.replace("(built earlier)", "")
        assert socket_port_in_pages(again) == port_of(first)
    finally:
        again.stop()


@pytest.mark.parametrize(
    "change",
    [
        lambda root: (root / "inspect_app" / "ui.py").write_text("x = 2\n"),
        lambda root: (root / "inspect_app" / "styles.css").write_text("body { color: red }\n"),
        lambda root: (root / "rxconfig.py").write_text("config = 2\n"),
        lambda root: (root / "inspect_app" / "new_page.py").write_text(""),
    ],
)
def test_the_fingerprint_changes_with_what_goes_into_the_bundle(tmp_path: Path, change: object) -> None:
    root = tmp_path / "checkout"
    (root / "inspect_app" / "__pycache__").mkdir(parents=True)
    (root / "inspect_app" / "ui.py").write_text("x = 1\n")
    (root / "inspect_app" / "styles.css").write_text("body {}\n")
    (root / "rxconfig.py").write_text("config = 1\n")
    baked = {"api_url": "http://localhost:3000"}
    before = fingerprint(root, baked)
    (root / "inspect_app" / "__pycache__" / "ui.cpython-311.pyc").write_bytes(b"\0")  # not a source
    assert fingerprint(root, baked) == before
    assert fingerprint(root, {"api_url": "http://localhost:3001"}) != before
    change(root)  # type: ignore[operator]
    assert fingerprint(root, baked) != before


def test_the_clean_up_keeps_the_newest_builds_and_any_a_server_serves(tmp_path: Path) -> None:
    for age, name in enumerate(["e", "d", "c", "b", "a"]):  # "a" the oldest
        (tmp_path / name).mkdir()
        (tmp_path / name / frontend.IN_USE).touch()  # as a server that served it once left it
        os.utime(tmp_path / name, (1_000_000 - age * 100, 1_000_000 - age * 100))
    served = frontend.hold(tmp_path / "a")  # a server of an old version still serves "a"
    try:
        assert sorted(frontend._prune(keep="e", builds_dir=tmp_path)) == ["b"]
    finally:
        served.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "c", "d", "e"]
    assert frontend._prune(keep="e", builds_dir=tmp_path) == ["a"]  # no longer served
