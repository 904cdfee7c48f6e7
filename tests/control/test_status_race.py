"""``status`` is answered on the control socket's thread: it must read, never write, the loop's state.

It used to call ``Gateway.totals``, which rolls the day and the rate windows of
the very ledgers that ``_admit``/``_settle`` change on the supervisor's loop.
Here a thread asks for ``status`` as fast as the socket answers while an SDK
agent makes concurrent budgeted calls; afterwards no ledger was touched from
another thread than the loop's, the reservations are all settled, and the
ledgers agree with the usage rows the store recorded call by call.
"""

from __future__ import annotations

import threading

from fleet.control.blocking import BlockingClient
from fleet.gateway import FakeProvider, Gateway

CALLS = 60

AGENT = f"""
    import asyncio
    async def run(ctx):
        async def one(i):
            await ctx.llm(f"call {{i}}", max_tokens=20)
        await asyncio.gather(*(one(i) for i in range({CALLS})))
        print("DONE")
        await ctx.sleep(60)
"""


async def test_status_in_a_tight_loop_never_touches_the_ledgers_of_concurrent_calls(fleet_factory, monkeypatch):
    touched: set[str] = set()
    for name in ("_ledger", "_roll"):
        original = getattr(Gateway, name)

        def spy(self, *args, _original=original, **kw):
            touched.add(threading.current_thread().name)
            return _original(self, *args, **kw)

        monkeypatch.setattr(Gateway, name, spy)

    gw = Gateway(FakeProvider(["ok"], price_in=1e-4, price_out=1e-4, tokens_out=20), environ={})
    f = await fleet_factory(
        """
        [[agent]]
        name = "racer"
        run = "agents.racer:run"
        [agent.budget]
        usd_per_day = 1000
        requests_per_minute = 100000
        tokens_per_minute = 10000000
        """,
        {"agents/racer.py": AGENT},
        gateway=gw,
    )
    stop = threading.Event()
    answers: list[dict] = []
    errors: list[BaseException] = []

    def hammer() -> None:
        try:
            with BlockingClient(f.runtime.server.path, origin="test") as c:
                while not stop.is_set():
                    answers.append(c.call("status"))
        except BaseException as exc:  # reported below
            errors.append(exc)

    t = threading.Thread(target=hammer, name="status-hammer")
    t.start()
    try:
        await f.events.wait_for(lambda e: e["event"] == "logs" and "DONE" in e["data"]["text"], timeout=60)
    finally:
        stop.set()
        t.join(10)
    assert not errors, errors
    assert len(answers) > 10, "status was not asked often enough to race"
    assert touched == {threading.current_thread().name}, f"ledgers touched from {touched}"

    led = gw._ledgers["racer"]
    assert led.in_flight == 0 and led.reserved_usd == 0.0 and led.reserved_tokens == 0
    await f.sup.store.flush()
    calls = (await f.call("usage", agent="racer", n=1000))["calls"]
    assert len(calls) == CALLS == led.calls and all(c["outcome"] == "ok" for c in calls)
    assert led.tokens == sum(c["tokens_in"] + c["tokens_out"] for c in calls)
    assert abs(led.cost_usd - sum(c["cost_usd"] for c in calls)) < 1e-9
    # What the control thread shows is what the loop published after the last call.
    row = next(a for a in (await f.call("status"))["agents"] if a["name"] == "racer")
    assert row["tokens"] == led.tokens and abs(row["cost_usd"] - led.cost_usd) < 1e-9
    assert row["budget_used"] is not None and abs(row["budget_used"] - led.cost_today_usd / 1000) < 1e-12
