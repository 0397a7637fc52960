"""The sandbox end to end: local provider + supervisor + bridge + the real OpenCode + a scripted model."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from sandbox.protocol import Author, PromptCommand, ShutdownCommand, SnapshotCommand, StopCommand
from sandbox.providers.processes import descendants
from tests.fakes.llm_server import FakeLLM, ToolCall, Turn
from tests.integration.sandbox_harness import (
    git,
    local_sandbox,
    make_origin,
    process_alive,
    require_opencode,
)

pytestmark = pytest.mark.timeout(180)

ADA = Author(name="Ada Lovelace", email="ada@example.com")
GRACE = Author(name="Grace Hopper", email="grace@example.com")
SERVER_SECRET = "server-only-secret-value"


@pytest.fixture(autouse=True)
def _needs_opencode() -> None:
    require_opencode()


def prompt(message_id: str, content: str, author: Author = ADA) -> PromptCommand:
    return PromptCommand(message_id=message_id, content=content, author=author)


def bash(command: str) -> ToolCall:
    return ToolCall("bash", {"command": command, "description": "run a command"})


async def test_prompt_runs_commits_as_author_and_streams_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INSPECT_GITHUB_APP_PRIVATE_KEY", SERVER_SECRET)  # in the server's env, never the sandbox's
    data_dir = tmp_path / "data"
    (data_dir).mkdir()
    (data_dir / "secret.key").write_text("top secret key material\n")
    origin = make_origin(tmp_path)
    llm = FakeLLM()
    async with local_sandbox(data_dir, origin, llm) as sb:
        ready = await sb.control.wait_type("ready", timeout=90)
        assert ready.boot_mode == "fresh" and ready.branch == "inspect/sess-1" and len(ready.commit) == 40
        llm.add(
            Turn(
                tool_calls=[
                    ToolCall("write", {"filePath": f"{sb.inner_root}/workspace/hello.txt", "content": "hello\n"})
                ]
            ),
            Turn(
                tool_calls=[
                    bash(
                        f"env | sort > {sb.inner_root}/state/env-dump.txt; "
                        f"cat {data_dir}/secret.key > {sb.inner_root}/state/secret-read.txt 2>&1; "
                        "git add hello.txt && git commit -qm 'Add hello'"
                    )
                ]
            ),
            Turn(text="I wrote hello.txt and committed it. Anything else you would like me to change today?"),
        )
        await sb.control.send(prompt("m1", "Please add hello.txt"))
        done = await sb.control.wait_type("execution_complete", message_id="m1", timeout=60)
        assert done.success, done.error

        kinds = [m.type for m in sb.control.unique]
        assert (
            kinds.index("ready") < kinds.index("tool_call") < kinds.index("token") < kinds.index("execution_complete")
        )
        tools = [(m.tool, m.status) for m in sb.control.of_type("tool_call")]
        assert ("write", "completed") in tools and ("bash", "completed") in tools
        assert (
            tools.index(("write", "running")) < tools.index(("write", "completed")) < tools.index(("bash", "running"))
        )
        text = "".join(m.text for m in sb.control.of_type("token"))
        assert text == "I wrote hello.txt and committed it. Anything else you would like me to change today?"
        assert len(sb.control.of_type("token")) < len(text) // 8  # coalesced, not one event per chunk
        assert sb.control.of_type("step_finish")
        assert sb.control.of_type("session_title")[0].title == "Scripted session"

        log = git("log", "-1", "--format=%an <%ae>|%cn|%s", cwd=sb.workspace).strip()
        assert log == "Ada Lovelace <ada@example.com>|Inspect|Add hello"

        env_dump = (sb.root / "state" / "env-dump.txt").read_text()
        assert SERVER_SECRET not in env_dump
        assert "SANDBOX_TOKEN" not in env_dump and sb.spec.token not in env_dump
        if sb.handle.isolated:
            assert "top secret key material" not in (sb.root / "state" / "secret-read.txt").read_text()
        else:
            assert sb.handle.warnings  # unisolated runs say so


async def test_stop_ends_the_prompt_and_the_next_one_runs(tmp_path: Path) -> None:
    origin = make_origin(tmp_path)
    llm = FakeLLM()
    async with local_sandbox(tmp_path / "data", origin, llm) as sb:
        await sb.control.wait_type("ready", timeout=90)
        llm.add(Turn(text="word " * 400, chunk_delay_s=0.05, chunk_size=5))
        await sb.control.send(prompt("slow", "Write a long essay"))
        await sb.control.wait_type("token", message_id="slow", timeout=30)
        stopped_at = asyncio.get_running_loop().time()
        await sb.control.send(StopCommand(message_id="slow"))
        done = await sb.control.wait_type("execution_complete", message_id="slow", timeout=10)
        assert not done.success
        assert asyncio.get_running_loop().time() - stopped_at < 6

        llm.add(Turn(text="Second answer."))
        await sb.control.send(prompt("next", "And now?", GRACE))
        second = await sb.control.wait_type("execution_complete", message_id="next", timeout=30)
        assert second.success
        assert "Second answer." in "".join(m.text for m in sb.control.of_type("token") if m.message_id == "next")


async def test_dropped_socket_mid_prompt_delivers_critical_events_exactly_once(tmp_path: Path) -> None:
    origin = make_origin(tmp_path)
    llm = FakeLLM()
    async with local_sandbox(tmp_path / "data", origin, llm) as sb:
        await sb.control.wait_type("ready", timeout=90)
        llm.add(Turn(text="streaming " * 60, chunk_delay_s=0.02, chunk_size=10))
        await sb.control.send(prompt("m1", "Stream something"))
        await sb.control.wait_type("token", message_id="m1", timeout=30)
        sb.control.withhold_acks = True  # the completion will be stored but not acknowledged...
        await sb.control.drop()  # ...and the socket dies mid-prompt
        await sb.control.wait_for(lambda _: sb.control.connections >= 2, 30, "a reconnect")
        await sb.control.wait_type("execution_complete", message_id="m1", timeout=30)
        await sb.control.drop()  # drop again before acknowledging: the sandbox must re-send it
        sb.control.withhold_acks = False
        await sb.control.wait_for(lambda _: sb.control.connections >= 3, 30, "a second reconnect")
        await sb.control.wait_for(
            lambda _: len([m for m in sb.control.of_type("execution_complete", unique=False)]) >= 2, 30, "a re-send"
        )
        assert len(sb.control.of_type("execution_complete")) == 1  # after de-duplication by ack id
        text = "".join(m.text for m in sb.control.of_type("token") if m.message_id == "m1")
        assert text == "streaming " * 60  # nothing lost while the socket was down


async def test_snapshot_then_restore_keeps_files_history_and_agent(tmp_path: Path) -> None:
    origin = make_origin(tmp_path)
    llm = FakeLLM()
    data_dir = tmp_path / "data"
    async with local_sandbox(data_dir, origin, llm) as sb:
        await sb.control.wait_type("ready", timeout=90)
        llm.add(
            Turn(tool_calls=[bash("echo 'kept' > notes.txt && git add notes.txt && git commit -qm 'Add notes'")]),
            Turn(text="Added notes."),
        )
        await sb.control.send(prompt("m1", "Add notes"))
        assert (await sb.control.wait_type("execution_complete", message_id="m1", timeout=60)).success
        await sb.control.send(SnapshotCommand())
        ready_for_snapshot = await sb.control.wait_type("snapshot_ready", timeout=30)
        ref = await sb.provider.snapshot(sb.handle)
        first_ready = sb.control.of_type("ready")[0]
        provider = sb.provider
        await sb.control.send(ShutdownCommand())
        await asyncio.sleep(0.5)

    async with local_sandbox(data_dir, origin, llm, restore_from=ref, provider=provider) as restored:
        ready = await restored.control.wait_type("ready", timeout=90)
        assert ready.boot_mode == "snapshot_restore"
        assert ready.commit == ready_for_snapshot.commit
        assert ready.agent_session_id == first_ready.agent_session_id  # the agent's conversation survives
        assert (restored.workspace / "notes.txt").read_text() == "kept\n"
        assert "Add notes" in git("log", "--format=%s", cwd=restored.workspace)
        llm.add(Turn(text="Follow-up done."))
        await restored.control.send(prompt("m2", "Follow up", GRACE))
        assert (await restored.control.wait_type("execution_complete", message_id="m2", timeout=60)).success
    await provider.close()


async def test_setup_failure_warns_and_start_failure_is_fatal(tmp_path: Path) -> None:
    llm = FakeLLM()
    setup_fails = make_origin(
        tmp_path / "a", {".inspect/setup.sh": "echo 'installing deps'\necho 'setup broke' >&2\nexit 3\n"}
    )
    async with local_sandbox(tmp_path / "data-a", setup_fails, llm) as sb:
        warning = await sb.control.wait_type("warning", timeout=60)
        assert "setup.sh exited with 3" in warning.message
        assert "setup broke" in warning.detail and "installing deps" in warning.detail
        await sb.control.wait_type("ready", timeout=90)

    start_fails = make_origin(tmp_path / "b", {".inspect/start.sh": "echo 'port 5432 in use' >&2\nexit 1\n"})
    async with local_sandbox(tmp_path / "data-b", start_fails, llm) as sb:
        error = await sb.control.wait_type("error", timeout=60, code="start_failed")
        assert "port 5432 in use" in error.message
        process = sb.provider._processes[sb.spec.sandbox_id]
        await asyncio.wait_for(process.wait(), 40)
        assert process.returncode == 1
        assert not sb.control.of_type("ready")


async def test_malformed_control_messages_get_an_error_and_the_bridge_stays_up(tmp_path: Path) -> None:
    origin = make_origin(tmp_path)
    llm = FakeLLM()
    async with local_sandbox(tmp_path / "data", origin, llm) as sb:
        await sb.control.wait_type("ready", timeout=90)
        await sb.control.send("this is not json")
        await sb.control.send({"type": "launch_missiles"})
        await sb.control.send({"type": "prompt", "message_id": "x"})  # missing content and author
        await sb.control.wait_for(lambda _: len(sb.control.of_type("error")) >= 3, 20, "three errors")
        errors = [e.message for e in sb.control.of_type("error")]
        assert all(e.startswith(("not JSON", "bad ")) for e in errors), errors
        assert sb.control.connections == 1
        llm.add(Turn(text="Still here."))
        await sb.control.send(prompt("m1", "Are you there?"))
        assert (await sb.control.wait_type("execution_complete", message_id="m1", timeout=60)).success


async def test_stop_leaves_no_process_behind(tmp_path: Path) -> None:
    origin = make_origin(tmp_path, {".inspect/start.sh": "sleep 300 > /dev/null 2>&1 &\necho started\n"})
    llm = FakeLLM()
    async with local_sandbox(tmp_path / "data", origin, llm) as sb:
        await sb.control.wait_type("ready", timeout=90)
        pid = int(sb.handle.provider_id)
        tree = [pid, *descendants(pid)]
        assert len(tree) >= 3  # supervisor (or bwrap) + OpenCode + the background sleep
        await sb.provider.stop(sb.handle)
        await asyncio.sleep(0.2)
        assert [p for p in tree if process_alive(p) and not _is_zombie(p)] == []


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


async def test_file_changes_wait_for_git_sync(tmp_path: Path) -> None:
    origin = make_origin(tmp_path)
    llm = FakeLLM()
    async with local_sandbox(tmp_path / "data", origin, llm) as sb:
        await sb.control.wait_type("ready", timeout=90)
        marker = sb.root / "state" / "sync-done"
        marker.unlink()  # as if a sync were still running
        llm.add(
            Turn(tool_calls=[ToolCall("read", {"filePath": f"{sb.inner_root}/workspace/README.md"})]),
            Turn(tool_calls=[ToolCall("write", {"filePath": f"{sb.inner_root}/workspace/late.txt", "content": "x\n"})]),
            Turn(text="Wrote it."),
        )
        await sb.control.send(prompt("m1", "Read, then write"))
        await sb.control.wait_type("tool_call", tool="read", status="completed", timeout=30)  # reads go ahead
        await asyncio.sleep(1.5)
        assert not (sb.workspace / "late.txt").exists()  # the write is held
        assert not sb.control.of_type("execution_complete")
        marker.touch()  # sync finished
        done = await sb.control.wait_type("execution_complete", message_id="m1", timeout=30)
        assert done.success and (sb.workspace / "late.txt").read_text() == "x\n"


async def test_a_crashed_agent_is_restarted(tmp_path: Path) -> None:
    origin = make_origin(tmp_path)
    llm = FakeLLM()
    async with local_sandbox(tmp_path / "data", origin, llm) as sb:
        await sb.control.wait_type("ready", timeout=90)
        opencode = [p for p in descendants(int(sb.handle.provider_id)) if "opencode serve" in _cmdline(p)]
        assert opencode
        for pid in opencode:
            os.kill(pid, signal.SIGKILL)
        warning = await sb.control.wait_type("warning", timeout=30)
        assert "OpenCode exited" in warning.message
        await sb.control.wait_for(
            lambda m: (
                len([x for x in m if x.type == "boot_progress" and x.stage == "agent" and x.status == "done"]) >= 2
            ),
            60,
            "the agent to come back",
        )
        llm.add(Turn(text="Back again."))
        await sb.control.send(prompt("m1", "Still working?"))
        assert (await sb.control.wait_type("execution_complete", message_id="m1", timeout=60)).success


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


async def test_the_commit_author_is_retried_while_locked_and_a_lasting_failure_ends_the_prompt_unrun(
    tmp_path: Path,
) -> None:
    """Setting the prompt's commit identity meets a held ``.git/config.lock`` (another git at work):
    it is tried again and the prompt runs. When the lock stays, the prompt ends — once, failed, with
    git's own words — before the agent runs: its commits would carry someone else's name."""
    origin = make_origin(tmp_path)
    llm = FakeLLM()
    async with local_sandbox(tmp_path / "data", origin, llm) as sb:
        await sb.control.wait_type("ready", timeout=90)
        lock = sb.root / "workspace" / ".git" / "config.lock"

        lock.write_text("held by another git\n")
        llm.add(Turn(text="Ran after the lock was let go."))
        await sb.control.send(prompt("transient", "Go", GRACE))
        await asyncio.sleep(0.5)
        lock.unlink()
        done = await sb.control.wait_type("execution_complete", message_id="transient", timeout=60)
        assert done.success, done.error
        config = (sb.root / "workspace" / ".git" / "config").read_text()
        assert "Grace Hopper" in config

        asked = len(llm.agent_requests())
        lock.write_text("held for good\n")
        await sb.control.send(prompt("lasting", "Go again", ADA))
        failed = await sb.control.wait_type("execution_complete", message_id="lasting", timeout=60)
        assert not failed.success and "could not lock config file" in (failed.error or ""), failed.error
        await asyncio.sleep(1)
        assert len(sb.control.of_type("execution_complete", unique=False)) == 2  # one end each, no more
        assert len(llm.agent_requests()) == asked  # the agent never ran the failed prompt
        assert not [m for m in sb.control.of_type("token") if m.message_id == "lasting"]
        lock.unlink()
