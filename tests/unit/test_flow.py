"""``ReadGate``: a connection is read only while it has room for more (fake transport, no sockets)."""

from __future__ import annotations

from fleet.flow import ReadGate


class FakeTransport:
    def __init__(self) -> None:
        self.reading = True
        self.limits: tuple[int, int] | None = None

    def set_write_buffer_limits(self, high: int, low: int) -> None:
        self.limits = (high, low)

    def pause_reading(self) -> None:
        assert self.reading
        self.reading = False

    def resume_reading(self) -> None:
        assert not self.reading
        self.reading = True

    def is_closing(self) -> bool:
        return False


def make(max_inflight: int = 2) -> tuple[ReadGate, FakeTransport, list[bytes]]:
    started: list[bytes] = []

    def start(line: bytes) -> bool:
        started.append(line)
        return not line.startswith(b"oneway")

    gate = ReadGate(start, max_inflight=max_inflight)
    t = FakeTransport()
    gate.attach(t, high=100, low=10)  # type: ignore[arg-type]
    assert t.limits == (100, 10)
    return gate, t, started


def test_requests_past_the_limit_wait_and_reading_stops_until_one_finishes() -> None:
    gate, t, started = make()
    for line in (b"a", b"b", b"c", b"d"):
        gate.offer(line)
    assert started == [b"a", b"b"] and list(gate.waiting) == [b"c", b"d"] and not t.reading
    gate.done()
    assert started == [b"a", b"b", b"c"] and not t.reading
    gate.done()
    assert started == [b"a", b"b", b"c", b"d"] and not gate.waiting
    assert not t.reading  # still two in flight
    gate.done()
    assert t.reading


def test_one_way_lines_never_count_as_in_flight() -> None:
    gate, t, started = make(max_inflight=1)
    for i in range(100):
        gate.offer(b"oneway %d" % i)
    assert len(started) == 100 and gate.inflight == 0 and t.reading


def test_unread_replies_and_holds_stop_reading() -> None:
    gate, t, _ = make()
    gate.pause_writing()
    assert not t.reading
    gate.hold(True)
    gate.resume_writing()
    assert not t.reading  # still held (store backpressure)
    gate.hold(False)
    assert t.reading


def test_closed_gate_starts_nothing_more() -> None:
    gate, _, started = make(max_inflight=1)
    gate.offer(b"a")
    gate.offer(b"b")
    gate.close()
    gate.done()
    assert started == [b"a"] and not gate.waiting
