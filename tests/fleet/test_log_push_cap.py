"""A subscriber gets at most its log rate (LOG_PUSH_RATE, or less if it asks); the rest is counted, never silent."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

import pytest

from fleet.control import server as srv
from fleet.control.logbudget import LogBudget
from fleet.errors import ProtocolError
from fleet.records import LogChunk
from fleet.supervisor.core import Supervisor


class FakeTransport:
    def __init__(self) -> None:
        self.out: list[bytes] = []

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0

    def write(self, data: bytes) -> None:
        self.out.append(data)


class FakeLoop:
    """Runs what the control loop would run, at once."""

    def __init__(self) -> None:
        self.later: list[Any] = []

    def call_soon_threadsafe(self, fn: Any, *args: Any) -> None:
        fn(*args)

    def call_later(self, delay: float, fn: Any) -> None:
        self.later.append(fn)


class FakeServer:
    def __init__(self) -> None:
        self.loop = FakeLoop()
        self.sup = SimpleNamespace(_subscribers=[], subscribe=self._subscribe)

    def _subscribe(self, sub: Any) -> Any:
        self.sup._subscribers.append(sub)
        return lambda: self.sup._subscribers.remove(sub)


def pushed(t: FakeTransport) -> list[dict[str, Any]]:
    return [json.loads(line) for chunk in t.out for line in chunk.splitlines()]


def connect(**subscribe: Any) -> tuple[srv._Connection, FakeTransport, Any]:
    server = FakeServer()
    conn = srv._Connection(server)  # type: ignore[arg-type]
    t = FakeTransport()
    conn.transport = t  # type: ignore[assignment]
    asyncio.run(conn._subscribe(**subscribe))
    return conn, t, server.sup


def flood_chunk(data: bytes = b"x" * 99 + b"\n", count: int = 2600) -> LogChunk:
    return LogChunk("flood", 1, "stdout", 1, count, 0.0, data * count)  # 260 KB, as one pipe read


def test_a_flood_is_capped_per_subscriber_and_the_skipped_lines_reported(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(srv.time, "monotonic", lambda: clock[0])
    conn, t, sup = connect()
    chunk = flood_chunk()
    sent = 0
    for _ in range(100):  # 26 MB in no time: far over the burst
        Supervisor._push_logs(sup, chunk)  # type: ignore[arg-type]
        sent += 1
    logs = [m for m in pushed(t) if m.get("event") == "logs"]
    assert logs
    assert len(logs) * len(chunk.data) <= srv.LOG_PUSH_BURST
    assert conn.server.loop.later  # a report is due even if no line follows
    conn.server.loop.later.pop()()
    [skipped] = [m for m in pushed(t) if m.get("event") == "logs_skipped"]
    assert skipped["data"]["lines"] == (sent - len(logs)) * 2600
    assert skipped["data"]["agents"] == {"flood": (sent - len(logs)) * 2600}
    clock[0] += 1.0  # a second later the budget is back: lines flow again
    before = len(logs)
    Supervisor._push_logs(sup, chunk)  # type: ignore[arg-type]
    assert len([m for m in pushed(t) if m.get("event") == "logs"]) == before + 1


def test_a_skipped_chunk_is_never_decoded_nor_encoded(monkeypatch):
    monkeypatch.setattr(srv.time, "monotonic", lambda: 7.0)
    conn, _t, sup = connect()
    conn._log_budget.tokens = 0.0

    class Untouchable(LogChunk):
        def to_wire(self) -> dict[str, Any]:
            raise AssertionError("a skipped chunk was encoded")

    chunk = Untouchable("flood", 1, "stdout", 1, 10, 0.0, b"line\n" * 10)
    for _ in range(50):
        Supervisor._push_logs(sup, chunk)  # type: ignore[arg-type]
    assert conn._skipped == {"flood": 500}


def test_a_subscriber_asking_for_less_gets_at_most_that(monkeypatch):
    clock = [50.0]
    monkeypatch.setattr(srv.time, "monotonic", lambda: clock[0])
    rate = 64 * 1024
    conn, t, sup = connect(logs_max_rate=rate)
    chunk = flood_chunk(count=100)  # 10 KB a read
    offered = 0
    for _ in range(10):  # ten seconds of a 1 MB/s agent, in 100 ms steps
        for _ in range(10):
            Supervisor._push_logs(sup, chunk)  # type: ignore[arg-type]
            offered += len(chunk.data)
        clock[0] += 0.1
    got = sum(len(m["data"]["text"]) for m in pushed(t) if m.get("event") == "logs")
    assert 0 < got <= rate * (1 + 10) + len(chunk.data)  # the burst (one second's worth) plus ten seconds
    assert got < offered / 5
    conn.server.loop.later.pop()()
    skipped = sum(m["data"]["lines"] for m in pushed(t) if m.get("event") == "logs_skipped")
    assert skipped * 100 + got == offered  # every line either sent or counted


def test_a_subscriber_cannot_ask_for_more_than_the_cap_nor_for_nonsense():
    conn, _t, _sup = connect(logs_max_rate=10 * srv.LOG_PUSH_RATE)
    assert conn._log_budget.rate == srv.LOG_PUSH_RATE
    for bad in (0, -1, "fast", True):
        with pytest.raises(ProtocolError, match="logs_max_rate"):
            connect(logs_max_rate=bad)


def test_a_budget_lets_a_chunk_bigger_than_its_burst_through_when_full():
    now = [0.0]
    budget = LogBudget(rate=1000, burst=1000, clock=lambda: now[0])
    assert budget.take(5000)  # bigger than the burst: passes on a full bucket, leaves a debt
    assert not budget.take(1)
    now[0] += 4.0  # the debt (4000) is paid back at the rate: nothing to spend yet
    assert not budget.take(1000)
    now[0] += 1.0
    assert budget.take(1000)


def test_other_events_are_never_capped(monkeypatch):
    monkeypatch.setattr(srv.time, "monotonic", lambda: 5.0)
    conn, t, _sup = connect()
    conn._log_budget.tokens = 0.0
    for i in range(1000):
        assert conn._push({"event": "state", "data": {"agent": "a", "state": "running", "i": i}})
    assert len([m for m in pushed(t) if m["event"] == "state"]) == 1000
