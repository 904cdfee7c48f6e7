"""The demo's spend must move where an operator can see it (issue 18: it read $0.00 for hours).

An optimiser takes about two campaign tasks a minute, one model call each.
Priced as the demo model is, and budgeted as policies/growth.toml says, its
budget bar passes 50 % within about four minutes and reaches the 80 % alert
(which pauses it) within ten.
"""

from __future__ import annotations

import tomllib

from fleet.gateway import demo_provider as demo
from fleet.paths import bundled_demo

CALLS_PER_MINUTE = 2.0  # measured on the running demo: ~2-2.5 per optimiser


def test_an_optimiser_call_costs_cents_and_its_budget_moves_within_minutes() -> None:
    prompt = [{"role": "user", "content": "Recommend a campaign bid for the search channel in region north; "
                                          "observed conversion 0.052."}]
    reply = demo.demo_reply(prompt)
    cost = (demo.count_tokens(prompt[0]["content"]) * demo.INPUT_COST_PER_TOKEN
            + demo.count_tokens(reply) * demo.OUTPUT_COST_PER_TOKEN)
    assert cost >= 0.005, cost  # shows in a $0.00 column after a call or two
    growth = tomllib.loads((bundled_demo() / "policies" / "growth.toml").read_text())
    budget = growth["budget"]["usd_per_day"]
    warn = tomllib.loads((bundled_demo() / "policies" / "default.toml").read_text())["alerts"]["budget_warn_pct"]
    assert growth["alerts"]["action"] == "pause"
    minutes_to_half = budget * 0.5 / cost / CALLS_PER_MINUTE
    minutes_to_pause = budget * warn / 100 / cost / CALLS_PER_MINUTE
    assert minutes_to_half <= 5 and minutes_to_pause <= 10, (minutes_to_half, minutes_to_pause)
