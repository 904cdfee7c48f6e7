"""Anomaly monitor: watches a sales metric stream and raises alerts on outliers.

The stream is generated here (a daily shape, noise, and now and then an
injected spike or drop) so the demo needs no data source. A rolling z-score
flags outliers; the model is asked for an assessment of each one, the agent
raises an alert and queues a ``campaign`` review task for the optimisers.
"""

from __future__ import annotations

import contextlib
import math
import random
from collections import deque

from fleet.agent import Context, FleetError

WINDOW = 30
THRESHOLD = 3.5


#: Samples at which the demo injects an outlier for sure, so that its first
#: minute shows an alert; after that they come at random, about one a minute.
SCRIPTED = {24: 0.45, 52: 1.9}
#: Chance that a sample after the scripted ones is an injected outlier.
OUTLIER_RATE = 1 / 60
#: Samples between two scheduled campaign reviews.
REVIEW_EVERY = 20
REGIONS = ("north", "south", "east", "west")


def sample(t: int, rng: random.Random) -> tuple[float, str | None]:
    base = 1200 + 300 * math.sin(t / 20)
    value = base + rng.gauss(0, 35)
    injected = None
    scripted = SCRIPTED.get(t)
    if scripted or (t > max(SCRIPTED) and rng.random() < OUTLIER_RATE):
        factor = scripted or rng.choice([0.45, 0.6, 1.7, 2.1])
        value *= factor
        injected = "drop" if factor < 1 else "spike"
    return value, injected


def zscore(window: deque[float], value: float) -> tuple[float, float]:
    """(mean, z) of ``value`` against the window."""
    mean = sum(window) / len(window)
    sd = math.sqrt(sum((x - mean) ** 2 for x in window) / len(window)) or 1.0
    return mean, (value - mean) / sd


async def run(ctx: Context, *, interval: float = 1.0, samples: int | None = None) -> None:
    """Sample once per ``interval`` seconds (``samples`` bounds the loop, for tests)."""
    rng = random.Random(7)
    window: deque[float] = deque(maxlen=WINDOW)
    ctx.log.info("watching sales metrics", window=WINDOW, threshold=THRESHOLD)
    t = 0
    kept_out = False
    while samples is None or t < samples:
        t += 1
        value, injected = sample(t, rng)
        ctx.metric("sales_per_min", value)
        outlier = False
        if len(window) >= 10:
            mean, z = zscore(window, value)
            print(f"t={t:05d} sales={value:8.1f} mean={mean:8.1f} z={z:+5.2f}")
            outlier = abs(z) >= THRESHOLD
            if outlier:
                await report(ctx, t, value, mean, z, injected)
        else:
            print(f"t={t:05d} sales={value:8.1f} (learning baseline)")
        if not outlier or kept_out:
            window.append(value)
            kept_out = False
        else:
            kept_out = True  # keep a lone outlier out of the baseline; a second in a row is a new level
        if t % REVIEW_EVERY == 0:
            # One scheduled review per region at most waits in the queue, whoever is busy or
            # paused and however many runs the fleet has been through.
            with contextlib.suppress(FleetError):
                await ctx.add_task("campaign", {"region": REGIONS[(t // REVIEW_EVERY) % 4],
                                                "reason": "scheduled review"}, unique=True)
        await ctx.sleep(interval)


async def report(ctx: Context, t: int, value: float, mean: float, z: float, injected: str | None) -> None:
    """An outlier: ask the model for an assessment, raise an alert, queue a campaign task."""
    where = REGIONS[t % 4]
    kind = "spike" if z > 0 else "drop"
    try:
        reply = await ctx.llm(
            f"Assess this anomaly in the sales metrics: a {kind} of z={z:+.1f} "
            f"({value:.0f} vs mean {mean:.0f}) in region {where}.",
            max_tokens=120,
        )
        assessment = reply["choices"][0]["message"]["content"]
    except FleetError as exc:
        assessment = f"(no assessment: {exc})"
        ctx.log.warning("llm refused", error=str(exc))
    ctx.alert(
        f"sales {kind} in {where}: z={z:+.1f} — {assessment[:160]}",
        severity="error" if abs(z) > 5 else "warning",
        rule="sales_anomaly",
        region=where,
        z=round(z, 2),
    )
    ctx.log.warning("anomaly", kind=kind, region=where, z=round(z, 2), injected=injected or "none")
    try:
        await ctx.add_task("campaign", {"region": where, "reason": f"sales {kind}"},
                           priority=5 if kind == "drop" else 1, unique=True)
    except FleetError as exc:
        ctx.log.debug("could not queue a task", error=str(exc))
