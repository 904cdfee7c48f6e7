"""Each alert rule firing, clearing and de-duplicating, on a fake clock; and its action."""

from __future__ import annotations

from typing import Any

from fleet.alerts import MIN_SAMPLES, AlertEngine
from fleet.records import AgentState, UsageRecord
from tests.tasks.fakes import Clock, FakeInst, FakeSup, policy

S = AgentState


def make(*insts: FakeInst, cooldown_s: float = 60.0) -> tuple[FakeSup, AlertEngine, Clock]:
    sup = FakeSup(*insts)
    clock = Clock()
    eng = AlertEngine(sup, cooldown_s=cooldown_s, clock=clock)  # type: ignore[arg-type]
    for name in ("on_usage", "on_task", "on_agent_alert", "on_state"):
        getattr(sup.hooks, name).append(getattr(eng, name))
    for inst in insts:
        assert inst.run is not None
        inst.run.started = clock.t
    return sup, eng, clock


def alerts(sup: FakeSup, rule: str | None = None) -> list[tuple[str | None, dict[str, Any]]]:
    return [(a, d) for a, d in sup.of("alert") if rule is None or d["rule"] == rule]


def usage(agent: str, ts: float, outcome: str = "ok", cost: float = 0.0) -> UsageRecord:
    return UsageRecord(agent, "fleet/demo", 10, 10, cost, 0.1, outcome, ts)


def test_stalled_fires_after_silence_only_for_running_agents_and_clears_on_output() -> None:
    a = FakeInst("a", policy(alerts={"silence_s": 30}))
    sup, eng, clock = make(a)
    clock.t += 29
    eng.tick()
    assert alerts(sup) == []
    clock.t += 2
    eng.tick()
    [(agent, data)] = alerts(sup, "stalled")
    assert agent == "a" and data["severity"] == "warning" and "no output or progress for 31s" in data["message"]
    assert eng.count("a") == 1
    eng.tick()
    assert len(alerts(sup)) == 1  # de-duplicated while open
    sup.loghub.last_output["a"] = clock.t + 1
    clock.t += 2
    eng.tick()
    assert eng.count("a") == 0
    assert [d["why"] for _, d in sup.of("alert_cleared")] == ["output resumed"]


def test_an_agent_waiting_for_work_or_a_human_is_idle_not_stalled() -> None:
    a = FakeInst("a", policy(alerts={"silence_s": 5}))
    b = FakeInst("b", policy(alerts={"silence_s": 5}))
    sup, eng, clock = make(a, b)

    class Waiting:
        def waiting_agents(self) -> set[str]:
            return {"a"}

    class Asking:
        def pending(self) -> list[dict[str, Any]]:
            return [{"agent": "b", "id": 1}]

    sup.services.tasks, sup.services.approvals = Waiting(), Asking()  # type: ignore[assignment]
    clock.t += 100
    eng.tick()
    assert alerts(sup) == []


def test_stalled_is_not_evaluated_for_paused_agents_and_a_resume_resets_the_clock() -> None:
    a = FakeInst("a", policy(alerts={"silence_s": 5}))
    sup, eng, clock = make(a)
    a.want_paused = True
    sup.set_state(a, S.PAUSED)
    clock.t += 100
    eng.tick()
    assert alerts(sup) == []
    a.want_paused = False
    sup.set_state(a, S.RUNNING)
    clock.t += 4
    eng.tick()
    assert alerts(sup) == []


def test_error_rate_from_llm_outcomes_and_task_failures_in_its_window() -> None:
    a = FakeInst("a", policy(alerts={"error_rate": 0.5, "error_window_s": 60}))
    sup, eng, clock = make(a)
    sup.hook("on_usage", usage("a", clock.t, "error"))
    eng.tick()
    assert alerts(sup) == []  # one failure of one: too few samples to judge
    sup.hook("on_usage", usage("a", clock.t, "ok"))
    sup.hook("on_usage", usage("a", clock.t, "denied"))  # a policy refusal is not an error
    eng.tick()
    assert alerts(sup) == [] and MIN_SAMPLES == 3
    sup.hook("on_task", "a", {"id": 1, "kind": "x", "state": "queued", "outcome": "failed"})
    eng.tick()
    [(_, data)] = alerts(sup, "error_rate")
    assert data["fields"] == {"rate": 0.667, "failures": 2, "samples": 3}
    assert data["severity"] == "error"
    clock.t += 61  # the window slides past them
    sup.hook("on_task", "a", {"id": 2, "kind": "x", "state": "done"})
    eng.tick()
    assert eng.count("a") == 0


def test_cost_rate_over_the_trailing_hour() -> None:
    a = FakeInst("a", policy(alerts={"cost_per_hour_usd": 0.1}))
    sup, eng, clock = make(a)
    sup.hook("on_usage", usage("a", clock.t, cost=0.06))
    eng.tick()
    assert alerts(sup) == []
    clock.t += 1800
    sup.hook("on_usage", usage("a", clock.t, cost=0.06))
    eng.tick()
    [(_, data)] = alerts(sup, "cost_rate")
    assert "$0.1200 in the last hour" in data["message"]
    clock.t += 1801  # the first call left the hour
    eng.tick()
    assert eng.count("a") == 0


def test_budget_warning_then_exhausted() -> None:
    a = FakeInst("a", policy(budget={"usd_per_day": 2.0}, alerts={"budget_warn_pct": 50}))
    sup, eng, _ = make(a)

    class Gateway:
        used = 0.4

        def totals(self, agent: str, pol: Any = None) -> dict[str, Any]:
            return {"budget_used": self.used}

    sup.gateway = gw = Gateway()
    eng.tick()
    assert alerts(sup) == []
    gw.used = 0.55
    eng.tick()
    assert [d["rule"] for _, d in alerts(sup)] == ["budget_warn"]
    gw.used = 1.0
    eng.tick()
    assert [d["rule"] for _, d in alerts(sup)] == ["budget_warn", "budget_exhausted"]
    assert eng.count("a") == 2


def test_crash_loop_is_counted_while_it_lasts_without_a_second_event() -> None:
    a = FakeInst("a")
    sup, eng, _ = make(a)
    sup.set_state(a, S.CRASH_LOOP, "6 restarts within 60s; not restarting")
    assert eng.count("a") == 1 and alerts(sup) == []  # the supervisor publishes that one itself
    eng.fire("a", "crash_loop", "error", "again")
    assert alerts(sup) == []
    sup.set_state(a, S.STARTING)
    assert eng.count("a") == 0


def test_a_dead_task_raises_an_alert() -> None:
    a = FakeInst("a")
    sup, _eng, _ = make(a)
    sup.hook("on_task", "a", {"id": 9, "kind": "x", "state": "dead", "reason": "gave up", "outcome": "lost"})
    [(agent, data)] = alerts(sup, "task_dead")
    assert agent == "a" and data["message"] == "task 9 (x) is dead: gave up" and data["severity"] == "error"


def test_agent_alerts_are_deduplicated_refire_after_cooldown_and_close_when_quiet() -> None:
    a = FakeInst("a")
    sup, eng, clock = make(a, cooldown_s=60)
    raise_ = {"rule": "sales_anomaly", "severity": "warning", "message": "spike", "fields": {"z": 4}}
    sup.hook("on_agent_alert", a, raise_)
    clock.t += 10
    sup.hook("on_agent_alert", a, {**raise_, "message": "spike again"})
    assert len(alerts(sup)) == 1
    [open_] = eng.open_alerts("a")
    assert open_["count"] == 2 and open_["message"] == "spike again"
    clock.t += 55  # 65 s after the first firing: the cool-down is over
    sup.hook("on_agent_alert", a, raise_)
    assert len(alerts(sup)) == 2 and alerts(sup)[1][1]["count"] == 3
    clock.t += 59
    eng.tick()
    assert eng.count("a") == 1
    clock.t += 2
    eng.tick()
    assert eng.count("a") == 0
    assert sup.of("alert_cleared")[0][1]["why"] == "no repeat within the cool-down"


def test_pause_action_pauses_and_is_audited_notify_does_not() -> None:
    pauser = FakeInst("pauser", policy(alerts={"silence_s": 1, "action": "pause"}))
    notifier = FakeInst("notifier", policy(alerts={"silence_s": 1, "action": "notify"}))
    sup, eng, clock = make(pauser, notifier)
    clock.t += 5
    eng.tick()
    assert pauser.want_paused and not notifier.want_paused
    assert pauser.paused_with[0] is not None and pauser.paused_with[0].startswith("alert stalled: no output")
    [(_, audit)] = sup.of("audit")
    assert audit["action"] == "pause" and audit["target"] == "pauser" and audit["origin"] == "policy"
    assert audit["details"]["rule"] == "stalled"
    assert {d["action"] for _, d in alerts(sup)} == {"pause", "notify"}


def test_info_alerts_only_notify() -> None:
    a = FakeInst("a", policy(alerts={"action": "pause"}))
    sup, _eng, _ = make(a)
    sup.hook("on_agent_alert", a, {"rule": "fyi", "severity": "info", "message": "hello"})
    assert not a.want_paused and len(alerts(sup)) == 1


def test_an_idle_fleet_is_evaluated_rarely_and_exactly_when_silence_runs_out() -> None:
    from fleet.alerts import IDLE_TICK_S

    quiet = FakeInst("quiet", policy())
    watched = FakeInst("watched", policy(alerts={"silence_s": 30}))
    _, eng, _ = make(quiet)
    eng.tick()
    assert eng.next_due == IDLE_TICK_S  # nothing can change with time: no 1 s ticking
    _, eng, clock = make(quiet, watched)
    clock.t += 10
    eng.tick()
    assert eng.next_due == 20  # the next evaluation that can matter: when watched's silence runs out
    clock.t += 20
    eng.tick()
    assert eng.count("watched") == 1 and eng.next_due == 0.0  # an open alert is looked at every tick
    eng.on_usage(usage("quiet", clock.t))
    assert eng._poke.is_set()  # activity wakes the sleeping evaluator


def test_a_condition_that_stays_true_is_one_occurrence_however_many_ticks_and_reminders() -> None:
    a = FakeInst("a", policy(budget={"usd_per_day": 2.0}, alerts={"budget_warn_pct": 50, "silence_s": 5}))
    sup, eng, clock = make(a, cooldown_s=60)

    class Gateway:
        used = 0.6

        def totals(self, agent: str, pol: Any = None) -> dict[str, Any]:
            return {"budget_used": self.used}

    sup.gateway = gw = Gateway()
    for _ in range(300):  # five minutes of one-second ticks, the budget spent and no output
        clock.t += 1
        eng.tick()
    counts = {al["rule"]: al["count"] for al in eng.open_alerts("a")}
    assert counts == {"budget_warn": 1, "stalled": 1}
    # Still true after each cool-down: reminded (published again), still one occurrence.
    assert [d["count"] for _, d in alerts(sup, "budget_warn")] == [1] * 5
    gw.used = 0.1  # a new day: the condition clears ...
    eng.tick()
    gw.used = 0.7  # ... and happens again: a new alert, not a continuation
    eng.tick()
    eng.tick()
    [open_] = [al for al in eng.open_alerts("a") if al["rule"] == "budget_warn"]
    assert open_["count"] == 1 and [d["rule"] for _, d in sup.of("alert_cleared")] == ["budget_warn"]


async def test_the_evaluator_stops_when_cancelled_even_as_it_is_poked() -> None:
    # asyncio.wait_for (3.11) swallows a cancellation that lands as the awaited event fires:
    # the evaluator then looped on, and a supervisor shutting down (agents stopping poke
    # it) never finished exiting. Every interleaving of a poke and the cancellation:
    import asyncio

    for turns in range(6):
        _, eng, _ = make(FakeInst("a", policy()))
        task = asyncio.create_task(eng.run(interval=60.0))
        for _ in range(3):
            await asyncio.sleep(0)  # the evaluator is waiting for a poke
        eng.poke()
        for _ in range(turns):
            await asyncio.sleep(0)
        task.cancel()
        done, _ = await asyncio.wait([task], timeout=10)
        assert done and task.cancelled(), f"still running after a cancel {turns} turns after a poke"
