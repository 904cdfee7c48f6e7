"""``fleet logs``: history from the store (no fleet needed), then live lines with ``-f``.

Whatever an agent printed is sanitised before it reaches the operator's
terminal: colours are kept only when stdout is a terminal, every other
control sequence is neutralised.
"""

from __future__ import annotations

import functools
import json
import sys
import time
from typing import Any

import click

from fleet.cli import EXIT_NOT_RUNNING, Ctx, fail, pass_ctx
from fleet.cli.timeparse import parse_since


@functools.lru_cache(maxsize=64)
def _clock(second: int) -> str:
    """``HH:MM:SS`` of a whole second: the lines of one read share it, so it is formatted once."""
    return time.strftime("%H:%M:%S", time.localtime(second))


@functools.lru_cache(maxsize=1024)
def _stamp(ts: float) -> str:
    """``HH:MM:SS.mmm``: the lines of one chunk share their time, so it is formatted once per chunk."""
    return f"{_clock(int(ts))}.{int(ts * 1000) % 1000:03d}"


_TAGS = {"stdout": "  out", "stderr": "  err", "sdk": "  sdk", "fleet": "fleet"}


def _fmt(line: dict[str, Any], color: bool, show_agent: bool) -> str:
    from fleet.ansi import sanitize

    stream = line["stream"]
    tag = _TAGS.get(stream) or f"{stream:>5}"
    text = sanitize(line["text"], keep_sgr=color)
    who = f"{line['agent']} " if show_agent else ""
    if color:
        dim, reset = "\x1b[2m", "\x1b[0m"
        red = "\x1b[31m" if stream == "stderr" else ""
        return f"{dim}{_stamp(line['ts'])} {who}{tag}{reset} {red}{text}{reset if red else ''}"
    return f"{_stamp(line['ts'])} {who}{tag} {text}"


@click.command()
@click.argument("name", required=False)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines as they come.")
@click.option("-n", "lines", default=50, show_default=True, help="How many lines of history.")
@click.option("--grep", default=None, help="Only lines containing TEXT (full-text index).")
@click.option("--since", default=None, help="Only lines after T (30m, 2h, today, ISO time).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@pass_ctx
def logs(ctx: Ctx, name: str | None, follow: bool, lines: int, grep: str | None, since: str | None,
         as_json: bool) -> None:
    """Show an agent's logs (all agents, merged, without NAME)."""
    try:
        since_ts = parse_since(since)
    except ValueError as exc:
        fail(str(exc))
        return
    from fleet.ansi import sanitize

    color = sys.stdout.isatty() and not as_json
    show_agent = name is None

    def render(line: dict[str, Any]) -> str | None:
        if grep and grep.lower() not in line["text"].lower():
            return None
        if as_json:
            # The text as plain as `fleet logs | less` shows it: a JSON string may hold
            # any character raw, and C1 or bidi controls would reach the reader's terminal.
            return json.dumps({**line, "text": sanitize(line["text"], keep_sgr=False)}, ensure_ascii=False)
        return _fmt(line, color, show_agent)

    def emit(line: dict[str, Any]) -> None:
        out = render(line)
        if out is not None:
            click.echo(out)

    import asyncio  # here, not at the top: the commands that need no loop start faster without it

    history = asyncio.run(_history(ctx, name, lines, grep, since_ts))
    last_seq: dict[str, int] = {}
    # History goes out in blocks of lines, one write each: a write (and a flush) per
    # line was a third of the time of printing an agent's 200 000 lines.
    write = click.get_text_stream("stdout").write
    block: list[str] = []
    for line in history:
        out = render(line)
        if out is not None:
            block.append(out)
            if len(block) >= 2048:
                write("\n".join(block) + "\n")
                block.clear()
        last_seq[line["agent"]] = max(last_seq.get(line["agent"], 0), line["seq"])
    if block:
        write("\n".join(block) + "\n")
    sys.stdout.flush()
    if not follow:
        return
    try:
        asyncio.run(_follow(ctx, name, last_seq, emit))
    except KeyboardInterrupt:
        pass


async def _history(ctx: Ctx, name: str | None, n: int, grep: str | None, since: float | None) -> list[dict]:
    """Read from the store directly: works with no fleet running."""
    import sqlite3

    db = ctx.state_dir() / "fleet.db"
    if not db.exists():
        return []
    try:
        return await _read_history(db, name, n, grep, since)
    except sqlite3.DatabaseError as exc:  # damaged, unreadable: what can be read, and one line
        from fleet.store.damage import explain_unreadable, is_damage

        if not is_damage(exc):
            fail(explain_unreadable(db, exc))
        from fleet.store.damage import salvage_connection
        from fleet.store.readers import salvage_tail
        from fleet.store.segments import logs_dir

        try:
            conn = salvage_connection(db)
        except (sqlite3.DatabaseError, OSError):
            fail(explain_unreadable(db, exc))
            return []
        try:
            lines, _ = salvage_tail(conn, name, n, grep, since, logs_dir=logs_dir(db))
        finally:
            conn.close()
        if not lines:
            fail(explain_unreadable(db, exc))
        click.echo(f"fleet: {explain_unreadable(db, exc)}; showing the lines that could still be read", err=True)
        return [ln.to_wire() for ln in lines]


async def _read_history(db: Any, name: str | None, n: int, grep: str | None, since: float | None) -> list[dict]:
    from fleet.store import Store

    store = await Store.open(db, readonly=True)
    try:
        agent = name
        if name is not None:
            seqs = await store.max_seqs()
            if name not in seqs:
                group = sorted(a for a in seqs if a.split("#", 1)[0] == name)
                if len(group) == 1:
                    agent = group[0]
                elif group:
                    fail(f"{name!r} has several instances: {', '.join(group)}; name one")
                elif not seqs:
                    return []
                else:
                    from fleet.names import closest

                    guess = closest(name, {*seqs, *(a.split("#", 1)[0] for a in seqs)})
                    hint = f"; did you mean {guess!r}?" if guess else f" (agents with logs: {', '.join(sorted(seqs))})"
                    fail(f"no logs for {name!r}{hint}")
        if grep:
            found = await store.search(grep, agent=agent, limit=n, since=since)
        else:
            found = await store.tail(agent, n=n, since=since)
        return [ln.to_wire() for ln in found]
    finally:
        await store.close()


async def _follow(ctx: Ctx, name: str | None, last_seq: dict[str, int], emit: Any) -> None:
    from fleet.control.client import SocketClient
    from fleet.errors import FleetNotRunning
    from fleet.records import LogChunk

    try:
        client = await SocketClient.connect(ctx.socket(), origin="logs")
    except FleetNotRunning:
        fail(f"no fleet is running in {ctx.fleet_dir}; nothing to follow", EXIT_NOT_RUNNING)
        return
    try:
        async for msg in client.subscribe(["logs"]):
            chunk = LogChunk.from_wire(msg["data"])
            if name is not None and chunk.agent != name and chunk.agent.split("#", 1)[0] != name:
                continue
            for i, text in enumerate(chunk.lines()):
                seq = chunk.first_seq + i
                if seq <= last_seq.get(chunk.agent, 0):
                    continue
                emit({"agent": chunk.agent, "seq": seq, "ts": chunk.ts, "stream": chunk.stream, "text": text,
                      "run_id": chunk.run_id})
        fail("the fleet stopped", 0)
    finally:
        await client.close()
