"""End-to-end: real agent processes under a real supervisor, driven over the control socket."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys

import psutil
import pytest

from fleet.errors import FleetError, UnknownAgent
from tests.procstate import stopped

SDK_AGENT = """
    import os, sys
    async def run(ctx):
        print(f"ready {ctx.name} {ctx.group} env={os.environ.get('GREETING')} cwd={os.getcwd()}")
        ctx.log.info("started", goal=ctx.goal)
        n = 0
        while True:
            n += 1
            await ctx.sleep(0.05)
            await ctx.checkpoint()
"""


async def test_sdk_and_command_agents_start_with_replicas_env_and_cwd(fleet_factory, tmp_path):
    (tmp_path / "work").mkdir()
    f = await fleet_factory(
        f"""
        [[agent]]
        name = "sdk"
        run = "agents.sdk:run"
        replicas = 2
        env = {{ GREETING = "hi" }}
        cwd = "{tmp_path / 'work'}"
        goal = "say hi"

        [[agent]]
        name = "cmd"
        command = ["sh", "-c", "echo cmd says $GREETING; exec sleep 60"]
        env = {{ GREETING = "yo" }}
        """,
        {"agents/sdk.py": SDK_AGENT},
    )
    st = await f.call("status")
    assert [a["name"] for a in st["agents"]] == ["sdk#1", "sdk#2", "cmd"]
    await f.events.state("sdk#1", "running")
    await f.events.state("sdk#2", "running")
    for name in ("sdk#1", "sdk#2"):
        line = await f.events.wait_for(
            lambda e, n=name: e["event"] == "logs" and e["data"]["agent"] == n and "ready" in e["data"]["text"]
        )
        assert f"ready {name} sdk env=hi cwd={tmp_path / 'work'}" in line["data"]["text"]
        assert line["data"]["stream"] == "stdout"
    sdk_log = await f.events.wait_for(lambda e: e["event"] == "logs" and e["data"]["stream"] == "sdk")
    assert "INFO started goal=say hi" in sdk_log["data"]["text"]
    cmd = await f.events.wait_for(lambda e: e["event"] == "logs" and e["data"]["agent"] == "cmd"
                                  and e["data"]["stream"] == "stdout")
    assert cmd["data"]["text"] == "cmd says yo\n"
    a = await f.agent("cmd")
    assert a["kind"] == "command" and a["state"] == "running" and a["pid"]


async def test_provider_keys_never_reach_agents(fleet_factory, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-should-not-leak")
    monkeypatch.setenv("MY_SERVICE_API_KEY", "also-secret")
    f = await fleet_factory(
        """
        [[agent]]
        name = "env"
        command = ["sh", "-c", "env; exec sleep 60"]
        """
    )
    await f.events.wait_for(lambda e: e["event"] == "logs" and "FLEET_AGENT=env" in e["data"]["text"])
    await f.sup.store.flush()
    text = "".join(e["data"]["text"] for e in f.events.events if e["event"] == "logs")
    assert "sk-secret" not in text and "also-secret" not in text


async def test_output_lines_are_bounded_replaced_and_numbered(fleet_factory):
    script = (
        "import sys\n"
        "sys.stdout.buffer.write(b'a' * 100000 + b'\\n')\n"
        "sys.stdout.buffer.write(b'bad \\xff\\xfe utf8\\n')\n"
        "sys.stdout.buffer.write(b'\\x1b[2J\\x1b]0;pwned\\x07clear\\n')\n"
        "sys.stderr.write('to stderr\\n')\n"
        "sys.stdout.buffer.write(b'no newline at end')\n"
    )
    f = await fleet_factory(
        f"""
        [[agent]]
        name = "w"
        command = ["{sys.executable}", "-c", {json.dumps(script)}]
        [agent.restart]
        mode = "never"
        """
    )
    await f.events.state("w", "exited")
    await f.sup.store.flush()
    res = await f.call("logs", agent="w", n=100, streams=["stdout", "stderr"])
    texts = [ln["text"] for ln in res["lines"]]
    long = texts[0]
    assert long.startswith("a" * 65536) and long.endswith("line cut at 64 KiB]") and len(long) < 65600
    assert "bad \ufffd\ufffd utf8" in texts
    assert "\x1b[2J\x1b]0;pwned\x07clear" in texts  # stored as printed; neutralised on display
    assert "to stderr" in texts and "no newline at end" in texts
    seqs = [ln["seq"] for ln in (await f.call("logs", agent="w", n=100))["lines"]]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "line numbers have no gaps"


async def test_sdk_pause_is_cooperative_and_idempotent(fleet_factory):
    f = await fleet_factory(
        "[[agent]]\nname = \"a\"\nrun = \"agents.a:run\"\n", {"agents/a.py": SDK_AGENT}
    )
    await f.events.state("a", "running")
    res = await f.call("pause", names=["a"])
    assert res["changed"] == ["a"]
    await f.events.state("a", "pausing")
    await f.events.state("a", "paused")
    again = await f.call("pause", names=["a"])
    assert again["changed"] == []
    assert (await f.agent("a"))["state"] == "paused"
    await f.call("resume", names=["a"])
    await f.events.wait_for(lambda e: e["event"] == "state" and e["data"]["agent"] == "a"
                            and e["data"]["state"] == "running" and e["data"]["prev"] == "paused")
    assert (await f.call("resume", names=["a"]))["changed"] == []


async def test_command_pause_stops_the_whole_process_group(fleet_factory):
    f = await fleet_factory(
        """
        [[agent]]
        name = "c"
        command = ["sh", "-c", "sleep 300 & while true; do sleep 0.2; done"]
        """
    )
    await f.events.state("c", "running")
    pid = (await f.agent("c"))["pid"]
    proc = psutil.Process(pid)

    def group() -> list[psutil.Process]:
        out = []
        for p in psutil.process_iter():
            if _pgid(p.pid) == pid:
                try:
                    p.status()
                    out.append(p)
                except psutil.NoSuchProcess:
                    pass
        return out

    await _until(lambda: len(group()) >= 2)
    await f.call("pause", all=True)
    assert (await f.agent("c"))["state"] == "paused"
    # A child that finished just before the stop stays a zombie (its parent is stopped).
    def statuses() -> list[tuple[int, str, str]]:
        out = []
        for p in group():
            try:
                out.append((p.pid, p.status(), " ".join(p.cmdline())))
            except psutil.NoSuchProcess:
                pass
        return out

    # The stop is asynchronous, as kill(2) is: a process still in the kernel has SIGSTOP
    # pending, and may stay there for the whole pause (see tests.procstate).
    await _until(lambda: all(stopped(pid) for pid, _, _ in statuses()), explain=statuses)
    await f.call("pause", names=["c"])  # idempotent
    await f.call("resume", names=["c"])
    await _until(lambda: proc.status() != psutil.STATUS_STOPPED)
    assert (await f.agent("c"))["state"] == "running"


async def test_on_failure_restarts_with_backoff_then_crash_loop(fleet_factory):
    f = await fleet_factory(
        """
        [[agent]]
        name = "crashy"
        command = ["sh", "-c", "echo boom; exit 3"]
        [agent.restart]
        mode = "on-failure"
        backoff_initial_s = 0.05
        backoff_max_s = 0.2
        max_restarts = 3
        window_s = 60
        """
    )
    ev = await f.events.state("crashy", "crash-loop")
    assert "restarts within 60s" in ev["data"]["reason"]
    states = f.events.states("crashy")
    assert states.count("crashed") == 4
    assert "backoff" in states
    alert = await f.events.wait_for(lambda e: e["event"] == "alert" and e["data"]["rule"] == "crash_loop")
    assert alert["data"]["agent"] == "crashy"
    a = await f.agent("crashy")
    assert a["state"] == "crash-loop" and a["restarts"] == 3 and a["exit_code"] == 3
    # The operator's start clears the crash loop.
    await f.call("start", names=["crashy"])
    await f.events.wait_for(lambda e: e["event"] == "state" and e["data"]["agent"] == "crashy"
                            and e["data"]["state"] == "running" and e["data"]["prev"] == "crash-loop")


async def test_clean_exit_is_not_restarted_on_failure_but_is_with_always(fleet_factory):
    f = await fleet_factory(
        """
        [[agent]]
        name = "once"
        command = ["true"]
        [agent.restart]
        mode = "on-failure"

        [[agent]]
        name = "again"
        command = ["true"]
        [agent.restart]
        mode = "always"
        max_restarts = 2
        backoff_initial_s = 0.01
        """
    )
    await f.events.state("once", "exited")
    await f.events.state("again", "crash-loop")
    assert (await f.agent("once"))["restarts"] == 0


async def test_stop_escalates_to_sigkill_after_grace(fleet_factory):
    f = await fleet_factory(
        """
        [[agent]]
        name = "stubborn"
        command = ["sh", "-c", "trap '' TERM; echo up; while true; do sleep 0.1; done"]
        [agent.restart]
        stop_grace_s = 0.3
        """
    )
    await f.events.wait_for(lambda e: e["event"] == "logs" and e["data"]["text"] == "up\n")
    t0 = asyncio.get_running_loop().time()
    await f.call("stop", names=["stubborn"])
    elapsed = asyncio.get_running_loop().time() - t0
    a = await f.agent("stubborn")
    assert a["state"] == "stopped" and elapsed >= 0.3
    await f.events.wait_for(lambda e: e["event"] == "logs" and "SIGKILL" in e["data"]["text"])
    await f.call("start", names=["stubborn"])
    await f.events.wait_for(lambda e: e["event"] == "state" and e["data"]["agent"] == "stubborn"
                            and e["data"]["state"] == "running" and e["data"]["prev"] == "stopped")


async def test_restart_and_unknown_agent(fleet_factory):
    f = await fleet_factory('[[agent]]\nname = "s"\ncommand = ["sleep", "60"]\n')
    await f.events.state("s", "running")
    pid1 = (await f.agent("s"))["pid"]
    await f.call("restart", names=["s"])
    a = await f.agent("s")
    assert a["pid"] != pid1 and a["state"] == "running" and a["restarts"] == 1
    with pytest.raises(UnknownAgent, match="no agent named 'nope'"):
        await f.call("pause", names=["nope"])
    with pytest.raises(FleetError, match="name at least one agent"):
        await f.call("pause", names=[])


async def test_control_socket_is_private(fleet_factory):
    f = await fleet_factory('[[agent]]\nname = "s"\ncommand = ["sleep", "60"]\n')
    sock = f.runtime.server.path
    assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(sock.parent).st_mode) == 0o700


async def test_hostile_control_messages_get_errors_and_never_crash(fleet_factory):
    f = await fleet_factory('[[agent]]\nname = "s"\ncommand = ["sleep", "60"]\n')
    reader, writer = await asyncio.open_unix_connection(str(f.runtime.server.path), limit=1 << 20)

    async def reply() -> dict:
        return json.loads(await reader.readline())

    writer.write(b"\xff\xfe garbage\n")
    assert (await reply())["error"]["code"] == "protocol_error"
    writer.write(b"[1,2,3]\n")
    assert (await reply())["ok"] is False
    writer.write(b'{"id": 1, "op": "no_such_op"}\n')
    r = await reply()
    assert r["id"] == 1 and "unknown op" in r["error"]["message"]
    writer.write(b'{"id": 2, "op": "pause", "args": {"bogus": 1}}\n')
    assert "bad arguments" in (await reply())["error"]["message"]
    # A 100 MB line without a newline until the end.
    big = b"x" * (1 << 20)
    for _ in range(100):
        writer.write(big)
        await writer.drain()
    writer.write(b"\n")
    r = await reply()
    assert r["ok"] is False and "discarded" in r["error"]["message"]
    writer.write(b'{"id": 3, "op": "ping"}\n')
    assert (await reply())["result"]["fleet"] == "fleet"
    writer.close()
    assert (await f.agent("s"))["state"] == "running"


async def test_hostile_sdk_agent_channel(fleet_factory):
    agent = """
        import os
        async def run(ctx):
            os.write(3, b"not json at all\\n[1]\\n" + b'{"t": "wat"}\\n' + b'{"t": "call", "id": 9}\\n')
            os.write(3, b'{"t": "call", "id": 10, "op": "frobnicate", "args": {}}\\n')
            print("still alive")
            await ctx.sleep(60)
    """
    f = await fleet_factory('[[agent]]\nname = "h"\nrun = "agents.h:run"\n',
                            {"agents/h.py": agent})
    await f.events.wait_for(lambda e: e["event"] == "logs" and e["data"]["text"] == "still alive\n")
    await f.events.wait_for(lambda e: e["event"] == "logs" and "unknown control message" in e["data"]["text"])
    await f.events.wait_for(lambda e: e["event"] == "logs" and "not JSON" in e["data"]["text"])
    assert (await f.agent("h"))["state"] == "running"


async def _until(pred, timeout: float = 20.0, explain=lambda: "") -> None:
    """Poll a process-table condition (the kernel offers no event for it) with a deadline."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not pred():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met in time {explain()}")
        await asyncio.sleep(0.02)


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


async def test_secrets_are_redacted_from_agent_logs(fleet_factory):
    from fleet.gateway import FakeProvider, Gateway

    gw = Gateway(FakeProvider(), environ={"OPENAI_API_KEY": "literal-provider-key-123"})
    f = await fleet_factory(
        """
        [[agent]]
        name = "leaky"
        command = ["sh", "-c", "echo key=literal-provider-key-123 ok; sleep 60"]
        """,
        gateway=gw,
    )
    ev = await f.events.wait_for(lambda e: e["event"] == "logs" and "ok" in e["data"]["text"]
                                 and e["data"]["stream"] == "stdout")
    assert ev["data"]["text"] == "key=[REDACTED] ok\n"
    await f.sup.store.flush()
    found = await f.call("logs", agent="leaky", grep="literal")
    assert found["lines"] == []


async def test_stats_push_agents_and_the_gateway_state(fleet_factory):
    # The console's header learns idle -> loading -> ready from these pushes, not from a poll.
    f = await fleet_factory('[[agent]]\nname = "s"\ncommand = ["sleep", "60"]\n')
    await f.events.state("s", "running")
    ev = await f.events.wait_for(lambda e: e["event"] == "stats")
    assert ev["data"]["gateway"] == (await f.call("status"))["gateway"]
    assert [a["name"] for a in ev["data"]["agents"]] == ["s"]


async def test_stats_pushes_carry_changes_only_and_a_new_watcher_gets_everything(fleet_factory):
    """200 quiet agents must not cost a 200-row push every second; uptime alone is not a change."""
    from fleet.supervisor.core import Subscriber, Supervisor

    f = await fleet_factory(
        '[[agent]]\nname = "a"\ncommand = ["sleep", "60"]\n\n[[agent]]\nname = "b"\ncommand = ["sleep", "60"]\n'
    )
    f.sup.publish_stats_changes = lambda: []  # the once-a-second loop stays out of this test's way
    push = lambda: Supervisor.publish_stats_changes(f.sup)  # noqa: E731
    await f.events.state("a", "running")
    await f.events.state("b", "running")
    push()  # whatever was not pushed yet
    assert push() == []  # nothing changed but the uptimes
    await f.call("pause", names=["a"])
    assert [a["name"] for a in push()] == ["a"]
    pushed: list[dict] = []
    unsubscribe = f.sup.subscribe(Subscriber(lambda m: pushed.append(m) or True, kinds={"stats"}))
    try:
        assert sorted(a["name"] for a in push()) == ["a", "b"]
        assert pushed and sorted(a["name"] for a in pushed[-1]["data"]["agents"]) == ["a", "b"]
    finally:
        unsubscribe()


@pytest.mark.parametrize("own_sessions", [True, False])
async def test_agents_lead_their_process_group_in_a_session_of_their_own_only_with_a_terminal(
    fleet_factory, own_sessions
):
    f = await fleet_factory(
        '[[agent]]\nname = "s"\n'
        'command = ["sh", "-c", "if (: <> /dev/tty) 2>/dev/null; then echo tty-open; else echo no-tty; fi; '
        'exec sleep 60"]\n'
    )
    def tty_line(run_id):
        return lambda e: (e["event"] == "logs" and e["data"]["agent"] == "s" and e["data"]["stream"] == "stdout"
                          and e["data"]["run_id"] != run_id)

    first = await f.wait_status("s", lambda a: a["state"] == "running")
    first_run = (await f.events.wait_for(tty_line(None)))["data"]["run_id"]
    f.sup.agent_sessions = own_sessions
    await f.call("restart", names=["s"])
    a = await f.wait_status("s", lambda a: a["state"] == "running" and a["pid"] not in (None, first["pid"]))
    pid = a["pid"]
    assert os.getpgid(pid) == pid  # pause and stop act on the whole group
    if own_sessions:
        assert os.getsid(pid) == pid
        line = await f.events.wait_for(tty_line(first_run))
        assert line["data"]["text"] == "no-tty\n"  # no way to the operator's terminal
    else:
        assert os.getsid(pid) == os.getsid(0)


def test_a_supervisor_without_a_terminal_keeps_agents_in_its_session():
    probe = "from fleet.supervisor.instance import agent_sessions; print(agent_sessions())"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                         start_new_session=True, stdin=subprocess.DEVNULL)
    assert out.stdout.strip() == "False"


async def test_status_is_answered_while_the_supervisor_loop_is_busy(fleet_factory):
    """The socket has its own thread: a supervisor loop stuck in work (a flood) does not delay ``status``."""
    import socket
    import threading

    f = await fleet_factory('[[agent]]\nname = "s"\ncommand = ["sleep", "60"]\n')
    await f.wait_status("s", lambda a: a["state"] == "running")
    answered = threading.Event()
    replies: list[dict] = []

    def ask() -> None:
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(f.runtime.server.path))
            s.sendall(b'{"id": 1, "op": "status"}\n')
            buf = b""
            while not buf.endswith(b"\n"):
                buf += s.recv(65536)
        replies.append(json.loads(buf))
        answered.set()

    t = threading.Thread(target=ask)
    t.start()
    # Block the supervisor's loop until the answer is in (it would never come if the loop had to serve it).
    assert answered.wait(10)
    t.join()
    assert replies[0]["ok"] and replies[0]["result"]["agents"][0]["name"] == "s"
