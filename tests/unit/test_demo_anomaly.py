"""The demo's anomaly watcher, run against a fake context: its rate, its alerts, its tasks.

It once skipped its ``ctx.sleep`` after every outlier (about a hundred
samples in two seconds, an alert "seen 282 times", hundreds of queued tasks).
Here every sample is followed by one sleep of the intended interval, and
three minutes of samples raise a handful of alerts and queue a bounded
number of tasks.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fleet.examples import anomaly


class FakeLog:
    def __getattr__(self, level: str) -> Any:
        return lambda *args, **fields: None


class FakeContext:
    """Records what the agent does; ``add_task(unique=True)`` behaves as the fleet's queue does."""

    def __init__(self) -> None:
        self.log = FakeLog()
        self.events: list[tuple[str, Any]] = []
        self.queued: list[tuple[str, Any]] = []
        self.metrics = 0

    def metric(self, name: str, value: float, **labels: Any) -> None:
        self.metrics += 1
        self.events.append(("metric", value))

    async def sleep(self, seconds: float) -> None:
        self.events.append(("sleep", seconds))

    async def llm(self, prompt: str, **params: Any) -> dict[str, Any]:
        self.events.append(("llm", prompt))
        return {"choices": [{"message": {"content": "Assessment: worth a look."}}]}

    def alert(self, message: str, **fields: Any) -> None:
        self.events.append(("alert", message))

    async def add_task(self, kind: str, payload: Any = None, *, priority: int = 0, unique: bool = False) -> int:
        if not (unique and (kind, payload) in self.queued):
            self.queued.append((kind, payload))
        return len(self.queued)


def test_one_sample_per_interval_a_handful_of_alerts_and_bounded_tasks() -> None:
    ctx = FakeContext()
    asyncio.run(anomaly.run(ctx, interval=1.0, samples=180))  # three minutes of the demo
    kinds = [k for k, _ in ctx.events]
    assert ctx.metrics == 180
    # Every sample is followed by exactly one sleep of the interval, outliers included.
    assert [v for k, v in ctx.events if k == "sleep"] == [1.0] * 180
    assert all(kinds[i + 1:].index("sleep") < kinds[i + 1:].index("metric")
               for i, k in enumerate(kinds) if k == "metric" and "metric" in kinds[i + 1:])
    alerts = [v for k, v in ctx.events if k == "alert"]
    sixtieth = [i for i, k in enumerate(kinds) if k == "metric"][59]
    first_minute = [v for k, v in ctx.events[:sixtieth] if k == "alert"]
    assert first_minute, "the scripted outliers raise an alert in the first minute"
    assert 2 <= len(alerts) <= 8, alerts
    # Nobody takes tasks here: still at most one per region and reason waits.
    keys = [json.dumps(item, sort_keys=True) for item in ctx.queued]
    assert len(keys) == len(set(keys)) <= 4 * 3
