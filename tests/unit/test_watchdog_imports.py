"""The orphan watchdog stays a small process: a handful of stdlib modules, nothing more.

It lives as long as its fleet and its memory is counted with the supervisor's,
so it is started as a file with ``python -I -S`` and imports only ``os``,
``errno``, ``signal``, ``time`` and ``ctypes`` (for ``prctl``), through
``fleet.supervisor.cgroupkill`` and ``fleet.supervisor.hardening``. Here it is
started exactly as the supervisor starts it (same argv, same environment), with
``-X importtime`` added; its input ends at once, so it also runs its reaping
path, and every module it imported on the way is listed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

from fleet.supervisor.cgroupkill import deepest_first, remove_tree
from fleet.supervisor.core import watchdog_argv, watchdog_env

#: What the watchdog may import beyond a bare ``python -I -S`` (their own imports included).
ALLOWED_STDLIB = "from __future__ import annotations; import os, errno, signal, time, ctypes"
ALLOWED_FLEET = {"fleet", "fleet.supervisor", "fleet.supervisor.cgroupkill", "fleet.supervisor.hardening"}


def imported(argv: list[str], env: dict[str, str] | None = None) -> set[str]:
    """Modules ``argv`` (a Python command line) imports, from ``-X importtime``."""
    argv = [argv[0], "-X", "importtime", *argv[1:]]
    out = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env, timeout=30)
    assert out.returncode == 0, out.stderr
    lines = [ln for ln in out.stderr.splitlines() if ln.startswith("import time:") and "|" in ln]
    names = {ln.rsplit("|", 1)[1].strip() for ln in lines}
    names.discard("imported package")  # the header line
    return names


def test_the_watchdog_imports_only_os_errno_signal_time_and_ctypes() -> None:
    bare = imported([sys.executable, "-I", "-S", "-c", "pass"])
    allowed = imported([sys.executable, "-I", "-S", "-c", ALLOWED_STDLIB]) | ALLOWED_FLEET
    token = uuid.uuid4().hex  # matches no process: its sweep finds nothing to kill
    extra = imported(watchdog_argv(token), env=watchdog_env(os.environ)) - bare
    assert {"fleet.supervisor.cgroupkill", "fleet.supervisor.hardening"} <= extra  # the check sees them
    for heavy in ("subprocess", "pathlib", "re", "shutil", "dataclasses", "typing", "tempfile", "ctypes.util"):
        assert heavy not in extra, f"the watchdog imports {heavy}"
    assert extra <= allowed, f"the watchdog imports more than it should: {sorted(extra - allowed)}"


def test_deepest_first_lists_every_directory_before_its_parent(tmp_path: Path) -> None:
    top = tmp_path / "fleet-1-ab"
    for rel in ("agent-a/x/y", "agent-a/z", "agent-b"):
        (top / rel).mkdir(parents=True)
    order = deepest_first(top)
    assert order[-1] == str(top) and len(order) == 6
    for i, d in enumerate(order):
        assert all(not other.startswith(d + os.sep) for other in order[i + 1 :]), (d, order)
    assert deepest_first(tmp_path / "gone") == [str(tmp_path / "gone")]
    assert remove_tree(tmp_path / "gone")  # already gone: nothing to do
