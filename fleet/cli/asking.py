"""``fleet send``, ``fleet questions``, ``fleet answer``: answering agents that wait for a human.

``send`` writes a line to a command agent's stdin (or end-of-file); ``answer``
answers a question an SDK agent asked with ``ctx.ask``. Both are audited by
the fleet with origin ``cli``.
"""

from __future__ import annotations

import json
import time

import click

from fleet.cli import Ctx, fail, pass_ctx, run_client


@click.command()
@click.argument("name")
@click.argument("text", required=False)
@click.option("--eof", is_flag=True, help="Close its input (end-of-file) after TEXT, if any.")
@click.option("--raw", is_flag=True, help="Send TEXT exactly as typed: control characters allowed, no newline added.")
@pass_ctx
def send(ctx: Ctx, name: str, text: str | None, eof: bool, raw: bool) -> None:
    """Write TEXT and a newline to agent NAME's input (what it reads on stdin)."""
    if text is None and not eof:
        fail("give the TEXT to send, or --eof to close its input")
    res = run_client(ctx, lambda c: c.call("send", name=name, text=text or "", eof=eof, raw=raw, by="cli"))
    agent = res["agents"][0]
    what = f"{res['bytes']} byte{'s' if res['bytes'] != 1 else ''}" if text is not None else ""
    done = " and ".join(x for x in (f"sent {what}" if what else "", "closed its input" if eof else "") if x)
    click.echo(f"{agent}: {done}")
    if not res["waiting"]:
        click.echo(f"note: {agent} was not waiting for input ({res['state']}); it reads it when it next reads")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_ctx
def questions(ctx: Ctx, as_json: bool) -> None:
    """List the questions agents asked and nobody answered yet (oldest first)."""
    items = run_client(ctx, lambda c: c.call("questions"))["questions"]
    if as_json:
        click.echo(json.dumps(items, indent=2))
        return
    if not items:
        click.echo("no open questions")
        return
    from fleet.ansi import sanitize
    from fleet.humanize import duration

    for q in items:
        age = duration(time.time() - float(q["asked_at"]))
        left = duration(max(0.0, float(q["expires_at"]) - time.time()))
        choices = f"  [{' | '.join(q['choices'])}]" if q.get("choices") else ""
        click.echo(f"#{q['id']}  {q['agent']}  {age} ago, {left} left: "
                   f"{sanitize(q['question'], keep_sgr=False)}{sanitize(choices, keep_sgr=False)}")


@click.command()
@click.argument("question_id", type=int)
@click.argument("text")
@pass_ctx
def answer(ctx: Ctx, question_id: int, text: str) -> None:
    """Answer question ID (from `fleet questions`) with TEXT (a choice, or its number)."""
    res = run_client(ctx, lambda c: c.call("answer", id=question_id, text=text, by="cli"))
    click.echo(f"answered #{question_id} ({res['agent']}): {res['answer']}")
