"""Where a wire record has a Python twin (a dataclass that builds it), the two name the same fields."""

from __future__ import annotations

import dataclasses

from fleet import records, wire
from fleet.alerts import Alert
from fleet.tasks.queue import TaskRec


def _fields(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def test_records_and_their_wire_forms_agree():
    assert _fields(records.UsageRecord) == set(wire.Usage.__annotations__)
    assert _fields(records.LogLine) == set(wire.LogLine.__annotations__)
    assert _fields(records.Event) == set(wire.Event.__annotations__)
    chunk = records.LogChunk("a", 1, "stdout", 0, 1, 0.0, b"x\n")
    assert set(chunk.to_wire()) == set(wire.LogsPushed.__annotations__)
    assert set(TaskRec(1, "k", None, 0, 0.0).wire()) == wire.Task.__required_keys__
    alert = Alert("a", "r", "warning", "m", 0.0, 0.0, 0.0)
    assert set(alert.wire()) == wire.Alert.__required_keys__
