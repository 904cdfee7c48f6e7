"""Anomaly monitor: watches a sales metric stream and raises alerts on outliers.

The stream is generated here (a daily shape, noise, and now and then an
injected spike or drop) so the demo needs no data source. A rolling z-score
flags outliers; the model is asked for an assessment of each one, the agent
raises an alert and queues a ``campaign`` review task for the optimisers.
"""

from __future__ import annotations

import math
import random
from collections import deque

from fleet.agent import Context, FleetError

WINDOW = 30
THRESHOLD = 3.0


#: Samples at which the demo injects an outlier for sure, so that its first
#: minute shows an alert; after that they come at random.
SCRIPTED = {24: 0.45, 52: 1.9}


def sample(t: int, rng: random.Random) -> tuple[float, str | None]:
    base = 1200 + 300 * math.sin(t / 20)
    value = base + rng.gauss(0, 35)
    injected = None
    scripted = SCRIPTED.get(t)
    if scripted or (t > WINDOW and rng.random() < 0.04):
        factor = scripted or rng.choice([0.45, 0.6, 1.7, 2.1])
        value *= factor
        injected = "drop" if factor < 1 else "spike"
    return value, injected


async def run(ctx: Context) -> None:
    rng = random.Random(7)
    window: deque[float] = deque(maxlen=WINDOW)
    interval = 1.0  # seconds between samples
    region = ["north", "south", "east", "west"]
    ctx.log.info("watching sales metrics", window=WINDOW, threshold=THRESHOLD)
    t = 0
    while True:
        t += 1
        value, injected = sample(t, rng)
        ctx.metric("sales_per_min", value)
        if len(window) >= 10:
            mean = sum(window) / len(window)
            sd = math.sqrt(sum((x - mean) ** 2 for x in window) / len(window)) or 1.0
            z = (value - mean) / sd
            print(f"t={t:05d} sales={value:8.1f} mean={mean:8.1f} z={z:+5.2f}")
            if abs(z) >= THRESHOLD:
                where = region[t % 4]
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
                    await ctx.add_task("campaign", {"region": where, "reason": f"sales {kind}",
                                                    "z": round(z, 2)}, priority=5 if kind == "drop" else 1)
                except FleetError as exc:
                    ctx.log.debug("could not queue a task", error=str(exc))
                continue  # keep outliers out of the baseline
        else:
            print(f"t={t:05d} sales={value:8.1f} (learning baseline)")
        window.append(value)
        if t % 20 == 0:
            try:
                await ctx.add_task("campaign", {"region": region[(t // 20) % 4], "reason": "scheduled review"})
            except FleetError:
                pass
        await ctx.sleep(interval)
