"""Campaign optimiser: takes ``campaign`` tasks and learns which channel pays.

Each task asks for a bid recommendation for a region. The agent keeps a
running estimate of conversion per channel (an epsilon-greedy bandit),
asks the model for a recommendation, "runs" the campaign (a simulated
outcome), finishes the task with the result and updates what it learned.
A few simulated launches fail, so retries and dead tasks show up too.
"""

from __future__ import annotations

import random

from fleet.agent import Context, FleetError

CHANNELS = {"search": 0.052, "social": 0.031, "email": 0.044, "display": 0.012}


async def run(ctx: Context) -> None:
    rng = random.Random(hash(ctx.name) & 0xFFFF)
    wins = {c: 1.0 for c in CHANNELS}
    tries = {c: 2.0 for c in CHANNELS}
    ctx.log.info("ready for campaign tasks", kinds=list(ctx.policy.tasks.kinds))
    while True:
        task = await ctx.next_task(timeout=30)
        if task is None:
            print("no campaign work queued; waiting")
            continue
        payload = task.payload or {}
        region = payload.get("region", "all")
        explore = rng.random() < 0.1  # epsilon-greedy: mostly exploit, sometimes explore
        channel = rng.choice(list(CHANNELS)) if explore else max(CHANNELS, key=lambda c: wins[c] / tries[c])
        print(f"task {task.id} (attempt {task.attempt}): {region} — {payload.get('reason', '')}; trying {channel}")
        try:
            reply = await ctx.llm(
                f"Recommend a campaign bid for the {channel} channel in region {region}; "
                f"observed conversion {wins[channel] / tries[channel]:.3f}.",
                max_tokens=120,
            )
            advice = reply["choices"][0]["message"]["content"]
        except FleetError as exc:
            await task.fail(f"no recommendation: {exc}")
            await ctx.sleep(2)
            continue
        await ctx.sleep(1.5 + rng.random() * 2)  # the campaign runs
        if rng.random() < 0.08:
            print(f"task {task.id}: ad platform rejected the launch")
            await task.fail("ad platform rejected the launch")
            continue
        conversions = sum(rng.random() < CHANNELS[channel] for _ in range(400))
        tries[channel] += 400 / 100
        wins[channel] += conversions / 100
        ctx.metric("conversion", conversions / 400, channel=channel)
        await task.done({"channel": channel, "conversions": conversions, "advice": advice[:200]})
        best = max(CHANNELS, key=lambda c: wins[c] / tries[c])
        print(f"task {task.id} done: {conversions} conversions on {channel}; best so far: {best}")
