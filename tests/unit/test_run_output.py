"""What ``fleet run`` prints: one agent-prefixed line per event, colours only when asked, never blocking."""

from __future__ import annotations

import io
import threading

from fleet.cli import run_output
from fleet.cli.run_output import EventPrinter


def test_lines_are_prefixed_by_agent_and_coloured_only_on_a_terminal() -> None:
    plain = EventPrinter(io.StringIO(), logs=True, colour=False)
    try:
        assert plain.format({"event": "state", "data": {"agent": "ticker", "state": "crashed",
                                                          "reason": "exit code 3", "exit_code": 3}}) == [
            "ticker | crashed (exit code 3)"]
        [alert] = plain.format({"event": "alert", "data": {"agent": "watch", "severity": "warning",
                                                             "rule": "sales_anomaly", "message": "drop\x1b[2J"}})
        assert alert.startswith("watch | ALERT warning sales_anomaly: drop") and "\x1b" not in alert
        assert plain.format({"event": "logs", "data": {"agent": "w", "stream": "stdout", "count": 2,
                                                         "text": "one\ntwo\n"}}) == ["w | one", "w | two"]
        assert plain.format({"event": "stats", "data": {}}) == []
    finally:
        plain.close()
    coloured = EventPrinter(io.StringIO(), colour=True)
    try:
        [line] = coloured.format({"event": "state", "data": {"agent": "a#2", "state": "running", "pid": 7}})
        assert line.startswith("\x1b[") and "running" in line and "pid 7" in line
    finally:
        coloured.close()


def test_a_terminal_that_falls_behind_never_blocks_the_fleet(monkeypatch) -> None:
    monkeypatch.setattr(run_output, "QUEUE_MAX", 10)
    release = threading.Event()

    class Stuck(io.StringIO):
        def write(self, text: str) -> int:
            release.wait(10)  # a terminal that does not scroll
            return super().write(text)

    out = Stuck()
    printer = EventPrinter(out, colour=False)
    for i in range(100):  # on the supervisor's loop: each returns at once
        assert printer.offer({"event": "state", "data": {"agent": "a", "state": "running", "pid": i}})
    release.set()
    printer.close()
    text = out.getvalue()
    assert "events not printed" in text and text.count("a | running") < 100
