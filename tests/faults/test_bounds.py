"""What one agent or one client can make the supervisor hold is bounded.

Each test runs the fleet in a process of its own (``fleet run``) and measures
its resident memory (psutil RSS) around a hostile agent or client. The bounds
asserted are generous (tens of MiB) so a loaded box cannot make them flaky,
yet each is far below what the unbounded tables grew to: ever-new metric
names ~110 MB/s, replies never read ~10 MB/s.
"""

from __future__ import annotations

import contextlib
import json
import resource
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleet.alerts import MAX_OPEN_PER_AGENT
from fleet.control.blocking import BlockingClient
from fleet.errors import TooManyConnections
from fleet.supervisor.core import MAX_METRIC_SERIES

from .fleetproc import FleetProcess, MiB

GATED = """
import os
async def run(ctx):
    while not os.path.exists("gate"):
        await ctx.sleep(0.05)
{body}
    ctx.log.info("hostile done")
    while True:
        await ctx.sleep(1)
"""


def sdk_fleet(tmp_path: Path, body: str) -> FleetProcess:
    return FleetProcess(tmp_path / "fleet", """
        [[agent]]
        name = "hostile"
        run = "hostile:run"
        """, {"hostile.py": GATED.format(body=body)})


@pytest.fixture
def procs() -> Iterator[list[FleetProcess]]:
    started: list[FleetProcess] = []
    yield started
    for p in started:
        p.stop()


def _ready(fp: FleetProcess) -> int:
    """Wait for the SDK agent and the gateway (litellm loads with the first SDK agent); return the RSS then."""
    fp.wait(lambda st: st["gateway"] == "ready" and st["agents"][0]["state"] == "running", 120, "agent and gateway")
    return fp.rss()


def _done(fp: FleetProcess, timeout: float = 120) -> dict:
    return fp.wait(lambda st: "hostile done" in st["agents"][0]["last_line"], timeout, "the hostile agent")


def test_metric_series_per_agent_are_capped(tmp_path: Path, procs) -> None:
    fp = sdk_fleet(tmp_path, """
    for i in range(300_000):
        ctx.metric(f"metric-{i}", i)
        if i % 2000 == 0:
            await ctx.sleep(0)
""")
    procs.append(fp)
    before = _ready(fp)
    (fp.dir / "gate").touch()
    _done(fp)
    grown = fp.rss() - before
    series = fp.call("metrics", agent="hostile")["metrics"]["hostile"]
    assert len(series) == MAX_METRIC_SERIES
    print(f"\nmetrics: supervisor RSS +{grown / MiB:.1f} MiB for 300 000 metric names")
    assert grown < 48 * MiB, f"supervisor grew {grown / MiB:.1f} MiB for 300 000 metric names"
    logs = fp.cli("logs", "hostile", "-n", "50")
    assert f"at most {MAX_METRIC_SERIES} metric series per agent" in logs.stdout


def test_alerts_per_agent_are_capped(tmp_path: Path, procs) -> None:
    fp = sdk_fleet(tmp_path, """
    blob = "x" * 20_000
    for i in range(3000):
        ctx.alert(f"alert {i}", rule=f"rule-{i}", blob=blob)
        if i % 100 == 0:
            await ctx.sleep(0)
""")
    procs.append(fp)
    before = _ready(fp)
    (fp.dir / "gate").touch()
    st = _done(fp)
    grown = fp.rss() - before
    assert st["agents"][0]["alerts"] == MAX_OPEN_PER_AGENT + 1
    print(f"\nalerts: supervisor RSS +{grown / MiB:.1f} MiB for 3000 alerts of 20 kB")
    alerts = fp.call("alerts", open_only=True)["alerts"]
    overflow = next(a for a in alerts if a["rule"] == "too_many_alerts")
    assert overflow["count"] == 3000 - MAX_OPEN_PER_AGENT
    assert all(len(json.dumps(a["fields"])) <= 4200 for a in alerts)
    assert grown < 48 * MiB, f"supervisor grew {grown / MiB:.1f} MiB for 3000 alerts of 20 kB"


def test_a_client_that_never_reads_its_replies_is_not_read_either(tmp_path: Path, procs) -> None:
    agents = "".join(f'[[agent]]\nname = "a{i}"\ncommand = ["sleep", "600"]\n\n' for i in range(20))
    fp = FleetProcess(tmp_path / "fleet", agents)
    procs.append(fp)
    fp.wait(lambda st: all(a["state"] == "running" for a in st["agents"]), 60, "20 agents")
    before = fp.rss()
    reply = len(json.dumps(fp.status()))
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(str(fp.socket))
    s.setblocking(False)
    sent = 0
    n = 20_000  # ~200 MB of status replies if they were all kept
    peak = before
    deadline = time.monotonic() + 8
    try:
        while sent < n and time.monotonic() < deadline:
            line = json.dumps({"id": sent, "op": "status"}).encode() + b"\n"
            try:
                s.send(line)
                sent += 1
            except BlockingIOError:
                peak = max(peak, fp.rss())
                time.sleep(0.01)  # the supervisor stopped reading us: that is the point
        time.sleep(0.5)
        peak = max(peak, fp.rss())
        # Meanwhile everyone else is answered.
        assert len(fp.status()["agents"]) == 20
    finally:
        s.close()
    grown = peak - before
    print(f"\nunread replies: supervisor RSS peak +{grown / MiB:.1f} MiB; {sent} requests got in")
    assert grown < 48 * MiB, (f"supervisor grew {grown / MiB:.1f} MiB for {sent} unread replies "
                              f"of {reply} bytes")
    assert fp.status()["agents"][0]["state"] == "running"


def _limit_fds() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (400, 400))


def test_connections_are_capped_and_status_and_restarts_still_work(tmp_path: Path, procs) -> None:
    fp = FleetProcess(tmp_path / "fleet", """
        [[agent]]
        name = "a"
        command = ["sleep", "600"]

        [[agent]]
        name = "b"
        command = ["sleep", "600"]
        """, preexec=_limit_fds)
    procs.append(fp)
    fp.wait(lambda st: all(a["state"] == "running" for a in st["agents"]), 60, "agents")
    before = fp.rss()
    cap = 400 - 160 - 8 * 2
    socks: list[socket.socket] = []
    refused = []
    try:
        for _ in range(cap + 60):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(str(fp.socket))
            socks.append(s)
        time.sleep(0.5)  # let the supervisor accept them all
        for s in socks:
            s.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                data = s.recv(4096)
                if data:
                    refused.append(json.loads(data.splitlines()[0]))
        assert len(refused) >= 50, len(refused)
        err = refused[0]["error"]
        assert err["code"] == "too_many_connections" and f"cap of {cap} connections" in err["message"]
        grown = fp.rss() - before
        print(f"\nconnections: {cap} idle connections, supervisor RSS +{grown / MiB:.1f} MiB")
        assert grown < 32 * MiB, f"{cap} idle connections cost {grown / MiB:.1f} MiB"
        # A newcomer while every connection is busy: a clear refusal.
        accepted = [s for s in socks if s.fileno() >= 0]
        for s in accepted:
            with contextlib.suppress(OSError):
                s.send(b'{"id": 1, "op": "ping"}\n')  # fresh activity: none is idle enough to evict
        with (pytest.raises(TooManyConnections, match=f"at its cap of {cap} connections"),
              BlockingClient(fp.socket, timeout=10) as c):
            c.call("status")
        time.sleep(1.2)  # the idle ones become evictable (EVICT_IDLE_S)
        r = fp.cli("status")
        assert r.returncode == 0 and "a " in r.stdout, r.stderr
        pid = next(a["pid"] for a in fp.status()["agents"] if a["name"] == "a")
        r = fp.cli("restart", "a")
        assert r.returncode == 0, r.stderr
        st = fp.wait(lambda st: next(a for a in st["agents"] if a["name"] == "a")["state"] == "running", 30)
        assert next(a["pid"] for a in st["agents"] if a["name"] == "a") != pid
        evicted = 0
        for s in socks:
            with contextlib.suppress(BlockingIOError, ConnectionError):
                data = s.recv(4096)
                if b'"closed"' in data:
                    evicted += 1
        assert evicted >= 1
    finally:
        for s in socks:
            s.close()


def test_unfinished_requests_are_bounded_across_connections(tmp_path: Path, procs) -> None:
    fp = FleetProcess(tmp_path / "fleet", '[[agent]]\nname = "a"\ncommand = ["sleep", "600"]\n')
    procs.append(fp)
    fp.wait(lambda st: st["agents"][0]["state"] == "running", 60, "the agent")
    before = fp.rss()
    chunk = b'{"id": 1, "op": "status", "args": {"pad": "' + b"x" * (2 * MiB)  # never finished
    socks = []
    try:
        for _ in range(80):  # 160 MiB of unfinished requests if all were kept
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(str(fp.socket))
            s.sendall(chunk)
            socks.append(s)
        assert len(fp.status()["agents"]) == 1  # answered meanwhile
        grown = fp.rss() - before
        print(f"\nunfinished requests: 80 x 2 MiB sent, supervisor RSS +{grown / MiB:.1f} MiB")
        told = 0
        for s in socks:
            s.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                if b"incomplete request of over" in s.recv(4096):
                    told += 1
        assert told >= 1
        assert grown < 110 * MiB, f"80 unfinished requests of 2 MiB cost {grown / MiB:.1f} MiB"
    finally:
        for s in socks:
            s.close()
