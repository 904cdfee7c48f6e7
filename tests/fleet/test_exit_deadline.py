"""A supervisor that fails on its way out still stops its agents and exits (issue: leaves no process behind).

The watchdog only acts once the supervisor's process is gone, so a supervisor
that hangs after an unexpected exception — asyncio's cleanup joining an
executor thread, a stop that never returns — must end itself. A real
``fleet run`` is started with a fault injected into ``Supervisor.shutdown``;
it must exit within the agents' grace plus the margin, and no agent may remain.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import write_fleet
from tests.fleet.test_cli_and_orphans import fleet_cmd, wait_until

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc"), reason="Linux process model")

#: Runs ``fleet run`` with the fault given as argv[1]; the margin is cut to keep the test short.
INJECT = textwrap.dedent("""
    import asyncio, sys, time
    import fleet.supervisor.core as core
    import fleet.supervisor.exit_deadline as deadline
    deadline.EXIT_MARGIN_S = 1.0
    fault = sys.argv.pop(1)

    async def shutdown(self):
        # A thread asyncio.run's cleanup (and the interpreter's exit) would join for ever.
        asyncio.get_running_loop().run_in_executor(None, time.sleep, 1000)
        if fault == "raise":
            raise RuntimeError("injected fault in shutdown")
        await asyncio.Event().wait()  # "hang": a stop that never returns

    core.Supervisor.shutdown = shutdown
    from fleet.cli import main
    main()
""")


def _agents(marker: str) -> list[int]:
    out = []
    for p in psutil.process_iter(["pid", "cmdline", "status"]):
        cmd = p.info.get("cmdline") or []
        if marker in cmd and p.info.get("status") != psutil.STATUS_ZOMBIE:
            out.append(p.info["pid"])
    return out


@pytest.mark.parametrize("fault", ["raise", "hang"])
def test_supervisor_failing_on_its_way_out_kills_agents_and_exits(tmp_path: Path, fault: str) -> None:
    marker = f"{random.randint(100, 999)}.{random.randint(1000, 9999)}"
    # The agents ignore SIGTERM: only a SIGKILL from the supervisor (or the watchdog) ends them.
    d = write_fleet(tmp_path / "f", f"""
        [[agent]]
        name = "a"
        command = ["sh", "-c", "trap '' TERM; echo up; sleep {marker}; sleep 1000"]
        [agent.restart]
        stop_grace_s = 1

        [[agent]]
        name = "b"
        command = ["sh", "-c", "trap '' TERM; echo up; sleep {marker}; sleep 1000"]
        [agent.restart]
        stop_grace_s = 1
    """)
    proc = subprocess.Popen([sys.executable, "-c", INJECT, fault, "-C", str(d), "run", "-q"],
                            env={**os.environ}, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: len(_agents(marker)) == 2, 30, "both agents to run")
        assert fleet_cmd(d, "status").returncode == 0
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the supervisor did not exit after a fault ({fault}) in its shutdown")
        took = time.monotonic() - t0
        err = proc.stderr.read() if proc.stderr else ""
        assert proc.returncode != 0, err
        assert took < 1 + 1 + 5, (took, err)  # grace + margin + slack for a loaded machine
        if fault == "raise":
            assert "injected fault in shutdown" in err  # the cause is shown, not swallowed
        else:
            assert "killing the agents and exiting" in err
        wait_until(lambda: not _agents(marker), 5, "the agents to be gone")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in _agents(marker):  # never leave a test's agent behind, whatever happened
            os.kill(pid, signal.SIGKILL)
