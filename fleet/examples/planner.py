"""Launch planner: asks its operator a question before it starts, then plans with the model.

The question (``ctx.ask`` with choices) puts the agent in ``waiting``: the
console's header counts it, the "needs you" queue (``a``) lists it with the
approvals, and ``fleet questions`` / ``fleet answer ID TEXT`` work from a
shell. Nobody answering within the timeout gives ``None``: the agent then goes
with a default and says so.
"""

from __future__ import annotations

from fleet.agent import Context, FleetError

REGIONS = ["emea", "apac", "amer"]


async def run(ctx: Context) -> None:
    ctx.log.info("planning the product launch", goal=ctx.goal)
    region = await ctx.ask("Which region should the launch plan start with?", choices=REGIONS, timeout=600)
    if region is None:
        region = REGIONS[0]
        ctx.log.warning("no answer in time: starting with the default", region=region)
    order = [region, *(r for r in REGIONS if r != region)]
    for step, r in enumerate(order, 1):
        try:
            reply = await ctx.llm(f"Outline launch step {step}: the {r} market, in two sentences.", max_tokens=120)
            text = reply["choices"][0]["message"]["content"]
        except FleetError as exc:
            text = f"(no outline: {exc})"
        print(f"step {step} [{r}] {text[:140]}")
        await ctx.sleep(3)
    while True:
        go = await ctx.ask("The plan is ready. Publish it to the launch channel?", choices=["yes", "not yet"],
                           timeout=900)
        print(f"publish: {go or 'no answer; asking again later'}")
        await ctx.sleep(120)
