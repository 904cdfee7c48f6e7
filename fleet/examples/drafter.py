"""Compliance-report drafter: drafts a report, then asks a human before sending it.

Distribution is a tool in ``tools.approve``: ``ctx.tool("distribute_report", ...)``
blocks until the operator answers in the console (``a``, then ``y``/``n``) or
with ``fleet approve ID``. A denial's reason comes back to the agent, which
revises the draft and asks again on the next round.
"""

from __future__ import annotations

import itertools

from fleet.agent import ApprovalDenied, Context, FleetError, PolicyDenied

SECTIONS = ["data retention", "access reviews", "vendor risk", "incident response"]


def send(report_id: str, recipients: list[str]) -> str:
    """Stand-in for the real mail-out; an approved action should be idempotent."""
    return f"sent {report_id} to {len(recipients)} recipients"


async def run(ctx: Context) -> None:
    ctx.log.info("drafting compliance reports", goal=ctx.goal)
    notes = ""
    for n in itertools.count(1):
        section = SECTIONS[n % len(SECTIONS)]
        report_id = f"CR-{n:04d}"
        print(f"[{report_id}] gathering evidence for {section} …")
        await ctx.sleep(2)
        try:
            reply = await ctx.llm(
                [
                    {"role": "system", "content": "You draft short, factual compliance reports."},
                    {"role": "user", "content": f"Draft the report section on {section}. {notes}"},
                ],
                max_tokens=200,
            )
        except FleetError as exc:
            ctx.log.error("drafting failed", report=report_id, error=str(exc))
            await ctx.sleep(10)
            continue
        draft = reply["choices"][0]["message"]["content"]
        usage = reply.get("usage") or {}
        print(f"[{report_id}] draft ready ({usage.get('total_tokens', '?')} tokens): {draft[:100]}")
        ctx.metric("drafts", n)
        try:
            result = await ctx.tool("distribute_report", send, report_id=report_id,
                                    recipients=["board@example.com", "audit@example.com"])
            ctx.log.info("distributed", report=report_id, result=result)
            notes = ""
        except ApprovalDenied as exc:
            ctx.log.warning("distribution not approved", report=report_id, reason=str(exc))
            notes = f"Revise: the reviewer said {exc}."
        except PolicyDenied as exc:
            ctx.log.error("distribution denied by policy", report=report_id, reason=str(exc))
        await ctx.sleep(15)
