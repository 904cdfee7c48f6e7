"""Keys never reach an agent or the store (issue 22): every route an agent has, tried.

The supervisor holds a (fake) provider key in its environment. An SDK agent
that somehow learnt it (here: from a file) sends it through every route it
has to get text stored or shown: stdout split by escape sequences and by the
64 KiB line cut, ``ctx.log``, ``ctx.alert``, metric names, task payloads,
results and errors, approval arguments, tool arguments. Then the store's
files and the control API are searched for any 9-character piece of the key,
as painted (escape sequences and invisible characters taken out).

And the key cannot be read from the supervisor through /proc by an agent of
the same user: the supervisor is not dumpable (see ``test_undumpable_*``;
root keeps CAP_SYS_PTRACE and reads it anyway, so that part runs as a
non-root uid), and the watchdog is started without it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fleet.gateway.keys import _INVISIBLE

KEY = "sk-fleettest-0123456789abcdefXYZ"

LEAKER = """
    import asyncio, os, sys
    from pathlib import Path
    from fleet.agent import ApprovalDenied

    async def run(ctx):
        key = Path(os.environ["KEY_FILE"]).read_text()
        print("plain", key, flush=True)
        print("escaped", key[:10] + "\\x1b[0m" + key[10:20] + "\\x1b]0;t\\x07" + key[20:], flush=True)
        print("zero-width", key[:12] + "\\u200b" + key[12:], flush=True)
        print("x" * (65536 - 20) + key + " tail", flush=True)  # the cut falls 20 bytes into the key
        sys.stderr.write("stderr " + key + "\\n"); sys.stderr.flush()
        ctx.log.info("log " + key, field=key, **{key: 1})
        ctx.log.info("hidden " + key[:5] + "\\x1b[1m" + key[5:])
        ctx.alert("alert " + key, rule="leak", detail=key)
        ctx.metric("metric-" + key, 1.0)
        await ctx.add_task("leak", {"k": key, key: [key]})
        await ctx.add_task("leak", {"again": key})
        t = await ctx.next_task()
        await t.done({"result": key})
        t = await ctx.next_task()
        await t.fail("error " + key, retry=False)
        try:
            await ctx.tool("send_" + key[:8], secret=key)
        except ApprovalDenied:
            pass
        print("routes done", flush=True)
        while True:
            await ctx.sleep(1)
"""


def _leaks(text: str) -> list[str]:
    painted = _INVISIBLE.sub("", text)
    return [KEY[i : i + 9] for i in range(len(KEY) - 8) if KEY[i : i + 9] in painted]


async def test_no_route_gets_the_key_into_the_store_or_the_api(fleet_factory, tmp_path, monkeypatch):
    from fleet.gateway import FakeProvider, Gateway

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    key_file = tmp_path / "leaked-key"
    key_file.write_text(KEY)
    f = await fleet_factory(
        f"""
        [[agent]]
        name = "leaker"
        run = "agents.leaker:run"
        env = {{ KEY_FILE = "{key_file}" }}
        [agent.tasks]
        kinds = ["leak"]
        [agent.tools]
        approve = ["send_*"]
        approval_timeout_s = 30
        """,
        {"agents/__init__.py": "", "agents/leaker.py": LEAKER},
        gateway=Gateway(FakeProvider()),  # keys from the supervisor's environment
    )
    ev = await f.events.wait_for(lambda e: e["event"] == "approval" and e["data"].get("status") == "pending")
    await f.call("deny", id=ev["data"]["id"], reason="no")
    await f.events.wait_for(lambda e: e["event"] == "logs" and "routes done" in e["data"]["text"], timeout=30)

    pushed = json.dumps(f.events.events, ensure_ascii=False)
    assert "[REDACTED]" in pushed
    assert _leaks(pushed) == [], "pushed events"
    answers = {
        op: await f.call(op, **args)
        for op, args in [
            ("status", {}), ("tasks", {}), ("approvals", {"pending_only": False}), ("events", {"n": 1000}),
            ("metrics", {}), ("logs", {"agent": "leaker", "n": 1000}), ("alerts", {}),
        ]
    }
    for op, answer in answers.items():
        assert _leaks(json.dumps(answer, ensure_ascii=False)) == [], op
    # Every stored route shows up redacted.
    logged = json.dumps(answers["logs"], ensure_ascii=False)
    for what in ("plain", "escaped", "zero-width", "stderr", "log", "hidden", "line cut"):
        assert what in logged
    assert "[REDACTED]" in json.dumps(answers["tasks"]) and "[REDACTED]" in json.dumps(answers["approvals"])

    await f.runtime.stop()  # everything flushed and closed
    _assert_no_file_leaks(Path(f.sup.state_dir))


def _assert_no_file_leaks(state: Path) -> None:
    files = [p for p in state.rglob("*") if p.is_file() and not p.is_socket()]
    assert any(p.name == "fleet.db" for p in files)
    for p in files:
        assert _leaks(p.read_bytes().decode("utf-8", "replace")) == [], p


def test_the_watchdog_gets_no_key_in_its_environment() -> None:
    from fleet.supervisor.core import watchdog_env

    env = watchdog_env({"PATH": "/bin", "PYTHONPATH": "/x", "OPENAI_API_KEY": KEY, "HOME": "/h", "AWS_SECRET": "s"})
    assert env == {"PATH": "/bin", "PYTHONPATH": "/x"}


UNDUMPABLE = """
import os, sys
from fleet.supervisor.hardening import is_dumpable, make_undumpable
os.setgid(65534); os.setuid(65534)  # the supervisor and the agent share this uid
if sys.argv[1] == "harden":
    make_undumpable()
else:
    import ctypes; ctypes.CDLL(None).prctl(4, 1, 0, 0, 0)  # PR_SET_DUMPABLE 1: the default of a process
print("dumpable" if is_dumpable() else "undumpable", flush=True)
sys.stdin.read()
"""


def _read_environ_as(uid: int, pid: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["cat", f"/proc/{pid}/environ"], user=uid, group=uid, capture_output=True, text=True,
                          timeout=10)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and prctl are Linux's")
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch both processes to one other uid")
@pytest.mark.parametrize("mode", ["harden", "default"])
def test_undumpable_process_environ_is_unreadable_by_its_own_user(mode: str) -> None:
    """Same uid (65534) on both sides: only PR_SET_DUMPABLE 0 stands between them.

    Run as root here (the test machine), so both sides drop to one unprivileged
    uid; root itself would read the file anyway (CAP_SYS_PTRACE).
    """
    env = {**os.environ, "OPENAI_API_KEY": KEY, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen([sys.executable, "-c", UNDUMPABLE, mode], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        state = proc.stdout.readline().strip()
        read = _read_environ_as(65534, proc.pid)
        if mode == "harden":
            assert state == "undumpable"
            assert read.returncode != 0 and "Permission denied" in read.stderr
            assert os.stat(f"/proc/{proc.pid}/environ").st_uid == 0  # the files are root's now
        else:
            assert state == "dumpable"
            assert read.returncode == 0 and KEY in read.stdout  # what an agent could do before
    finally:
        proc.kill()
        proc.wait()


def test_fleet_run_makes_itself_undumpable_before_reading_keys() -> None:
    """The same process-wide switch is made by ``fleet run`` and by ``FleetRuntime.start`` first thing."""
    import inspect

    from fleet import runtime
    from fleet.cli import run

    src = inspect.getsource(run.callback)
    assert src.index("make_undumpable()") < src.index("run_until_signal(")
    start = inspect.getsource(runtime.FleetRuntime.start)
    assert start.index("make_undumpable()") < start.index("attach_governance(")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and prctl are Linux's")
def test_the_real_supervisor_is_undumpable_and_its_watchdog_holds_no_key(tmp_path):
    """``fleet run`` for real, with a key in its environment.

    The supervisor says it is not dumpable (``prctl(PR_GET_DUMPABLE)`` in its own
    process: what makes its /proc files root's, see the test above for what that
    does to an agent of the same user). Root reads them anyway: checked, and said.
    """
    import psutil

    from tests.conftest import write_fleet
    from tests.fleet.test_cli_and_orphans import FLEET, fleet_cmd, wait_until

    d = write_fleet(tmp_path / "f", '[[agent]]\nname = "idle"\ncommand = ["sleep", "100"]\n')
    proc = subprocess.Popen([*FLEET, "-C", str(d), "run", "-q"], env={**os.environ, "OPENAI_API_KEY": KEY})
    try:
        wait_until(lambda: fleet_cmd(d, "status").returncode == 0, 30, "the fleet")
        st = json.loads(fleet_cmd(d, "status", "--json").stdout)
        assert st["dumpable"] is False
        watchdog = next(c for c in psutil.Process(proc.pid).children() if "watchdog" in " ".join(c.cmdline()))
        assert KEY not in Path(f"/proc/{watchdog.pid}/environ").read_bytes().decode(errors="replace")
        if os.geteuid() == 0:  # what dumpable does not do: keep root out
            assert KEY in Path(f"/proc/{proc.pid}/environ").read_bytes().decode(errors="replace")
        else:
            with pytest.raises(PermissionError):
                Path(f"/proc/{proc.pid}/environ").read_bytes()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
