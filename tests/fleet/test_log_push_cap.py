"""A subscriber gets at most LOG_PUSH_RATE of log text per second; the rest is counted, never silent."""

from __future__ import annotations

import json
from typing import Any

from fleet.control import server as srv


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


def pushed(t: FakeTransport) -> list[dict[str, Any]]:
    return [json.loads(line) for chunk in t.out for line in chunk.splitlines()]


def test_a_flood_is_capped_per_subscriber_and_the_skipped_lines_reported(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(srv.time, "monotonic", lambda: clock[0])
    conn = srv._Connection(FakeServer())  # type: ignore[arg-type]
    t = FakeTransport()
    conn.transport = t  # type: ignore[assignment]
    text = "x" * 99 + "\n"
    chunk = {"agent": "flood", "run_id": 1, "stream": "stdout", "first_seq": 1, "count": 2600, "ts": 0.0,
             "text": text * 2600}  # 260 KB, as one pipe read
    sent = 0
    for _ in range(100):  # 26 MB in no time: far over the burst
        assert conn._push({"event": "logs", "data": chunk})
        sent += 1
    logs = [m for m in pushed(t) if m.get("event") == "logs"]
    assert len(logs) * len(chunk["text"]) <= srv.LOG_PUSH_BURST
    assert conn.server.loop.later  # a report is due even if no line follows
    conn.server.loop.later.pop()()
    [skipped] = [m for m in pushed(t) if m.get("event") == "logs_skipped"]
    assert skipped["data"]["lines"] == (sent - len(logs)) * 2600
    assert skipped["data"]["agents"] == {"flood": (sent - len(logs)) * 2600}
    clock[0] += 1.0  # a second later the budget is back: lines flow again
    before = len(logs)
    assert conn._push({"event": "logs", "data": chunk})
    assert len([m for m in pushed(t) if m.get("event") == "logs"]) == before + 1


def test_other_events_are_never_capped(monkeypatch):
    monkeypatch.setattr(srv.time, "monotonic", lambda: 5.0)
    conn = srv._Connection(FakeServer())  # type: ignore[arg-type]
    t = FakeTransport()
    conn.transport = t  # type: ignore[assignment]
    conn._log_tokens = 0.0
    for i in range(1000):
        assert conn._push({"event": "state", "data": {"agent": "a", "state": "running", "i": i}})
    assert len([m for m in pushed(t) if m["event"] == "state"]) == 1000
