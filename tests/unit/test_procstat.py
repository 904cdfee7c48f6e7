"""Per-agent CPU and memory from /proc: the same figures psutil gives, for a tenth of the cost."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil
import pytest

from fleet.supervisor.procstat import ProcSampler, read_stat

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def test_rss_and_start_time_match_psutil():
    start, _ticks, rss = read_stat(os.getpid())
    assert abs(rss - psutil.Process().memory_info().rss) < 8 * 1024 * 1024
    assert start > 0


def test_cpu_percent_of_a_busy_child_and_a_vanished_one():
    child = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        sampler = ProcSampler()
        assert sampler.sample(child.pid)[0] == 0.0  # the first sample starts the clock, as psutil's
        ticks0 = read_stat(child.pid)[1]
        while read_stat(child.pid)[1] < ticks0 + 20:  # wait for 0.2 s of CPU, not for wall time
            time.sleep(0.01)
        cpu, rss = sampler.sample(child.pid)
        assert 5.0 < cpu <= 100.0 * os.cpu_count() and rss > 0
    finally:
        child.kill()
        child.wait()
    assert sampler.sample(child.pid) is None
    sampler.keep(set())
    assert not sampler._prev


def test_a_reused_pid_starts_over(monkeypatch):
    sampler = ProcSampler()
    pid = os.getpid()
    sampler.sample(pid)
    start, mono, cpu_s = sampler._prev[pid]
    sampler._prev[pid] = (start - 1, mono - 1.0, cpu_s - 100.0)  # "another process" with that pid before
    assert sampler.sample(pid)[0] == 0.0
