"""The confinement module's command lines and uid books, and host file access in a sandbox's directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.providers import hostfs
from sandbox.providers.confine import Jail, UidRange, UidsExhausted, user_entries


def jail(uid: int | None) -> Jail:
    return Jail(
        root=Path("/srv/data/sandboxes/s1"),
        inside=Path("/srv/data/sandbox"),
        uid=uid,
        hide=(Path("/home"), Path("/root"), Path("/srv/app"), Path("/srv/app/data"), Path("/srv/data")),
        show=(Path("/srv/app/.venv"), Path("/srv/app/sandbox"), Path("/root/.pyenv/versions/3.11")),
        readonly=(Path("/tmp/origin.git"),),
        env={"PATH": "/usr/bin:/bin", "HOME": "/srv/data/sandbox/home"},
    )


def test_as_root_the_program_runs_as_the_sandbox_uid_with_nothing_to_keep() -> None:
    command = jail(200_001).command(["python", "-m", "runtime"])
    program = command[command.index("--", command.index("--chdir")) + 1 :]
    assert program == [
        "setpriv",
        "--reuid=200001",
        "--regid=200001",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--no-new-privs",
        "--",
        "python",
        "-m",
        "runtime",
    ]
    assert "--unshare-user" not in command  # root builds the mounts, then drops (see the module docstring)
    for flag in ("--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent", "--new-session", "--clearenv"):
        assert flag in command


def test_not_root_it_keeps_its_uid_in_a_user_namespace_without_capabilities() -> None:
    command = jail(None).command(["true"])
    assert "--unshare-user" in command and command[command.index("--cap-drop") + 1] == "ALL"
    assert "setpriv" not in command


def test_only_the_public_environment_is_on_the_command_line_after_clearing() -> None:
    command = jail(None).command(["true"])
    clear = command.index("--clearenv")
    pairs = [(command[i + 1], command[i + 2]) for i, arg in enumerate(command) if arg == "--setenv"]
    assert pairs == [("PATH", "/usr/bin:/bin"), ("HOME", "/srv/data/sandbox/home")]
    assert all(i > clear for i, arg in enumerate(command) if arg == "--setenv")


def test_hidden_paths_come_first_then_what_is_shown_with_passable_mount_points() -> None:
    command = jail(200_001).command(["true"])
    mounts = [
        (arg, command[i + 1]) for i, arg in enumerate(command) if arg in ("--tmpfs", "--ro-bind", "--bind", "--dir")
    ]
    tmpfs = [target for kind, target in mounts if kind == "--tmpfs"]
    assert tmpfs == ["/tmp", "/home", "/root", "/srv/app", "/srv/data"]  # /srv/app/data lies inside /srv/app
    last_hide = max(i for i, (kind, _) in enumerate(mounts) if kind == "--tmpfs")
    shown = [i for i, (kind, target) in enumerate(mounts) if kind == "--ro-bind" and target.startswith("/srv/app/")]
    assert shown and min(shown) > last_hide
    # bwrap would make these mount points 0700 (root's): each is made 0755 first, outermost first
    made = [target for kind, target in mounts if kind == "--dir"]
    assert made == ["/root/.pyenv", "/root/.pyenv/versions"]
    assert (
        mounts[-1] == ("--bind", "/srv/data/sandboxes/s1")
        and command[command.index("--bind") + 2] == "/srv/data/sandbox"
    )


def test_uids_are_one_per_sandbox_and_come_back() -> None:
    uids = UidRange(200_000, 2)
    first, second = uids.take(), uids.take()
    assert {first, second} == {200_000, 200_001}
    with pytest.raises(UidsExhausted):
        uids.take()
    uids.give_back(first)
    assert uids.take() == first
    with pytest.raises(ValueError, match="1000"):
        UidRange(0, 10)  # never root, never a system account


def test_the_sandbox_user_is_added_to_the_hosts_passwd_and_group() -> None:
    passwd, group = user_entries("root:x:0:0::/root:/bin/bash", "root:x:0:", 200_003, Path("/s/home"))
    assert passwd.splitlines() == [
        "root:x:0:0::/root:/bin/bash",
        "sandbox:x:200003:200003:Inspect sandbox:/s/home:/bin/bash",
    ]
    assert group.splitlines() == ["root:x:0:", "sandbox:x:200003:"]


def test_the_host_never_follows_a_link_the_agent_planted(tmp_path: Path) -> None:
    root = tmp_path / "sandbox"
    (root / "state").mkdir(parents=True)
    target = tmp_path / "etc"
    target.mkdir()
    (target / "shadow").write_text("root:secret-hash\n")
    # a planted file link: not read, not written through
    (root / "state" / "build.json").symlink_to(target / "shadow")
    with pytest.raises(hostfs.UnsafePath):
        hostfs.read_text(root, "state/build.json")
    # a planted directory link: nothing is removed where it points
    (root / "state").rename(root / "state-real")
    (root / "state").symlink_to(target)
    with pytest.raises(hostfs.UnsafePath):
        hostfs.remove(root, "state/shadow")
    assert sorted(p.name for p in target.iterdir()) == ["shadow"]
    with pytest.raises(hostfs.UnsafePath):
        hostfs.copy_out(root, "state/shadow", tmp_path / "copy", limit=1 << 20)
    assert hostfs.read_text(root, "missing/file") is None


def test_reads_keep_the_tail_and_removals_take_the_link_not_its_target(tmp_path: Path) -> None:
    root = tmp_path / "sandbox"
    (root / "state").mkdir(parents=True)
    (tmp_path / "kept").write_text("not the sandbox's\n")
    (root / "state" / "tool-token").symlink_to(tmp_path / "kept")
    hostfs.remove(root, "state/tool-token")
    assert (tmp_path / "kept").exists() and list((root / "state").iterdir()) == []
    (root / "build.log").write_text("x" * 100 + "the end")
    assert hostfs.read_text(root, "build.log", limit=7) == "the end"
