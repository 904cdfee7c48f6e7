"""Loading a book: every error kind at its exact position, layering, origins, versions."""

from __future__ import annotations

import json
import re
import shutil
import tomllib
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from hypothesis import given, settings
from hypothesis import strategies as st

from fleet.errors import UnknownAgent
from fleet.policy import PolicyErrors, book_diff, load_book, validate_text
from fleet.policy.locate import TomlLocator

from .conftest import write_fleet

REPO = Path(__file__).resolve().parents[2]


def errors_of(fleet_dir: Path) -> list[str]:
    with pytest.raises(PolicyErrors) as info:
        load_book(fleet_dir)
    return [str(e) for e in info.value.errors]


# -- the demo fleet shipped with the project --------------------------------------


def test_demo_fleet_is_valid(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    demo.mkdir()
    shutil.copy(REPO / "fleet.toml", demo / "fleet.toml")
    shutil.copytree(REPO / "policies", demo / "policies", ignore=shutil.ignore_patterns("overrides.toml"))
    book = load_book(demo)
    assert [a.name for a in book.agents] == [
        "anomaly-watch",
        "report-drafter",
        "campaign-optimizer",
        "support-triage",
        "ticker",
        "launch-planner",
        "triage",
    ]
    assert book.instances()[2:4] == ["campaign-optimizer#1", "campaign-optimizer#2"]
    drafter = book.policy_for("report-drafter")
    assert drafter.tool_decision("distribute_report") == "approve"
    assert drafter.tool_decision("shell") == "deny"
    assert book.policy_for("campaign-optimizer#2").tasks.kinds == ["campaign"]
    assert book.agent("ticker").command and book.agent("ticker").run is None
    assert book.agent("triage").tty and book.policy_for("triage").alerts.waiting_s is None
    triage = book.policy_for("support-triage")
    assert triage.tool_decision("issue_refund") == "approve" and triage.llm.aliases == {"*": "fleet/demo"}
    assert book.policy_names == ("default", "drafting", "growth", "ops")


# -- a valid book ------------------------------------------------------------------


def test_minimal_fleet_needs_only_fleet_toml(tmp_path: Path) -> None:
    (tmp_path / "fleet.toml").write_text('[[agent]]\nname = "a"\ncommand = ["true"]\n')
    book = load_book(tmp_path)
    assert book.fleet.name == tmp_path.name  # defaults to the directory's name
    assert book.policy_for("a") == book.policy_for("a").model_validate({})
    assert set(book.origins_for("a").values()) == {"built-in"}
    assert book.files == {"fleet.toml": '[[agent]]\nname = "a"\ncommand = ["true"]\n'}


def test_empty_policy_files_are_valid(tmp_path: Path) -> None:
    write_fleet(tmp_path, {"policies/default.toml": "", "policies/ops.toml": "", "policies/drafting.toml": ""})
    book = load_book(tmp_path)
    assert book.policy_for("watch").llm.max_tokens == 512


def test_layering_and_origins(fleet_dir: Path) -> None:
    (fleet_dir / "policies/overrides.toml").write_text(
        '[alerts]\naction = "pause"\n\n'
        "[policy.drafting.llm]\nmax_tokens = 100\n\n"
        "[agent.watch.restart]\nmax_restarts = 9\n"
    )
    book = load_book(fleet_dir)
    watch, origins = book.policy_for("watch"), book.origins_for("watch")
    assert watch.budget.usd_per_day == 2.0 and origins["budget.usd_per_day"] == "policies/ops.toml"
    assert watch.budget.requests_per_minute == 60 and origins["budget.requests_per_minute"] == "policies/default.toml"
    assert watch.budget.on_exhausted == "pause" and origins["budget.on_exhausted"] == "built-in"
    assert watch.restart.max_restarts == 9 and origins["restart.max_restarts"] == "policies/overrides.toml"
    assert watch.alerts.action == "pause" and origins["alerts.action"] == "policies/overrides.toml"
    assert watch.llm.max_tokens == 512  # the drafting override is not for this agent

    drafter, d_origins = book.policy_for("drafter#2"), book.origins_for("drafter#1")
    assert drafter.budget.usd_per_day == 4.0 and d_origins["budget.usd_per_day"] == "fleet.toml"
    assert drafter.llm.max_tokens == 100 and d_origins["llm.max_tokens"] == "policies/overrides.toml"
    assert drafter.tools.deny == ["shell"] and drafter.tools.approve == ["publish_*"]
    assert drafter.restart.max_restarts == 5
    assert book.named_policy("drafting").llm.max_tokens == 100
    assert book.named_policy("drafting").budget.usd_per_day == 1.0


def test_lists_replace_lower_layers(fleet_dir: Path) -> None:
    (fleet_dir / "policies/ops.toml").write_text('[tools]\ndeny = ["rm"]\n')
    assert load_book(fleet_dir).policy_for("watch").tools.deny == ["rm"]


def test_off_lifts_a_lower_limit(fleet_dir: Path) -> None:
    (fleet_dir / "policies/ops.toml").write_text('[budget]\nusd_per_day = "unlimited"\n')
    book = load_book(fleet_dir)
    assert book.policy_for("watch").budget.usd_per_day is None
    assert book.origins_for("watch")["budget.usd_per_day"] == "policies/ops.toml"


def test_agent_goal_and_instances(fleet_dir: Path) -> None:
    text = (fleet_dir / "fleet.toml").read_text().replace('policy = "ops"', 'policy = "ops"\ngoal = "watch it"')
    (fleet_dir / "fleet.toml").write_text(text)
    book = load_book(fleet_dir)
    assert book.policy_for("watch").goal == "watch it"
    assert book.origins_for("watch")["goal"] == "fleet.toml"
    assert book.agent("drafter#2").name == "drafter"
    for bad in ("drafter#3", "drafter", "watch#1", "nobody"):
        if bad == "drafter":
            continue
        with pytest.raises(UnknownAgent):
            book.policy_for(bad)
    with pytest.raises(UnknownAgent, match="did you mean 'watch'"):
        book.policy_for("wacth")


def test_describe(fleet_dir: Path) -> None:
    book = load_book(fleet_dir)
    d = book.describe("watch")
    assert d["agent"] == "watch"
    assert d["policy"]["budget"]["usd_per_day"] == 2.0
    assert d["origins"]["restart.mode"] == "policies/ops.toml"
    json.dumps(d)
    assert book.describe("drafting")["policy"]["llm"]["max_tokens"] == 2048
    with pytest.raises(UnknownAgent):
        book.describe("nope")


# -- errors, each at its exact position --------------------------------------------


def test_syntax_error(fleet_dir: Path) -> None:
    (fleet_dir / "policies/ops.toml").write_text("[budget]\nusd_per_day = \n")
    assert errors_of(fleet_dir) == ["policies/ops.toml:2:15: TOML syntax error: invalid value"]


def test_syntax_error_at_end_of_document(fleet_dir: Path) -> None:
    (fleet_dir / "policies/ops.toml").write_text('[budget]\ngoal = "x')
    [error] = errors_of(fleet_dir)
    assert error.startswith("policies/ops.toml:2:")
    assert "TOML syntax error" in error


def test_wrong_type(fleet_dir: Path) -> None:
    (fleet_dir / "policies/ops.toml").write_text('[budget]\nusd_per_day = "two"\n')
    assert errors_of(fleet_dir) == ['policies/ops.toml:2:15: budget.usd_per_day: expected a number, got string "two"']


def test_wrong_type_in_a_list_points_at_the_element(fleet_dir: Path) -> None:
    (fleet_dir / "policies/ops.toml").write_text('[llm]\nmodels = [\n  "a",\n  3,\n]\n')
    assert errors_of(fleet_dir) == ["policies/ops.toml:4:3: llm.models[1]: expected a string, got integer 3"]


def test_out_of_range(fleet_dir: Path) -> None:
    (fleet_dir / "policies/ops.toml").write_text("[llm]\ntemperature = 2.5\n[alerts]\nerror_rate = -0.1\n")
    assert errors_of(fleet_dir) == [
        "policies/ops.toml:2:15: llm.temperature: must be <= 2, got 2.5",
        "policies/ops.toml:4:14: alerts.error_rate: must be >= 0, got -0.1",
    ]


def test_bad_choice(fleet_dir: Path) -> None:
    (fleet_dir / "policies/ops.toml").write_text('[budget]\non_exhausted = "stop"\n')
    assert errors_of(fleet_dir) == [
        "policies/ops.toml:2:16: budget.on_exhausted: must be 'pause' or 'block', got string \"stop\""
    ]


def test_unknown_key_did_you_mean(fleet_dir: Path) -> None:
    (fleet_dir / "policies/ops.toml").write_text("[budget]\n  usd_per_dya = 1\n")
    assert errors_of(fleet_dir) == [
        "policies/ops.toml:2:3: unknown key 'usd_per_dya' in [budget]; did you mean 'usd_per_day'?"
    ]


def test_unknown_key_without_a_near_miss(fleet_dir: Path) -> None:
    (fleet_dir / "policies/ops.toml").write_text("colour = 1\n")
    assert errors_of(fleet_dir) == ["policies/ops.toml:1:1: unknown key 'colour' at the top level"]


def test_unknown_table_did_you_mean(fleet_dir: Path) -> None:
    (fleet_dir / "policies/ops.toml").write_text("# ops\n\n[budgte]\nusd_per_day = 1\n")
    assert errors_of(fleet_dir) == ["policies/ops.toml:3:1: unknown table [budgte]; did you mean [budget]?"]


def test_unknown_key_in_an_agent_table(fleet_dir: Path) -> None:
    text = (fleet_dir / "fleet.toml").read_text().replace("usd_per_day = 4.0", "usd_per_dai = 4.0")
    (fleet_dir / "fleet.toml").write_text(text)
    assert errors_of(fleet_dir) == [
        "fleet.toml:16:1: unknown key 'usd_per_dai' in [agent.budget]; did you mean 'usd_per_day'?"
    ]


def test_agent_errors_name_the_agent(fleet_dir: Path) -> None:
    text = (fleet_dir / "fleet.toml").read_text().replace("replicas = 2", "replicas = 0")
    (fleet_dir / "fleet.toml").write_text(text)
    assert errors_of(fleet_dir) == ["fleet.toml:13:12: agent 'drafter' replicas: must be >= 1, got 0"]


def test_unknown_policy_name(fleet_dir: Path) -> None:
    text = (fleet_dir / "fleet.toml").read_text().replace('policy = "ops"', 'policy = "opz"')
    (fleet_dir / "fleet.toml").write_text(text)
    assert errors_of(fleet_dir) == [
        "fleet.toml:7:10: unknown policy 'opz': there is no policies/opz.toml; did you mean 'ops'?"
    ]


def test_missing_fleet_toml(tmp_path: Path) -> None:
    assert errors_of(tmp_path) == [f"fleet.toml:1:1: missing: {tmp_path / 'fleet.toml'} does not exist"]


def test_duplicate_agent(fleet_dir: Path) -> None:
    text = (fleet_dir / "fleet.toml").read_text().replace('name = "drafter"', 'name = "watch"')
    (fleet_dir / "fleet.toml").write_text(text)
    assert errors_of(fleet_dir) == ["fleet.toml:10:8: duplicate agent name 'watch' (first defined on line 5)"]


def test_run_and_command(fleet_dir: Path) -> None:
    text = (fleet_dir / "fleet.toml").read_text().replace('run = "pkg.watch:run"\n', "")
    (fleet_dir / "fleet.toml").write_text(text)
    assert errors_of(fleet_dir) == [
        "fleet.toml:4:1: agent 'watch': give exactly one of 'run' (module:function) and 'command' "
        "(argument list); this agent has neither"
    ]


def test_agent_policy_table_explains_where_settings_go(fleet_dir: Path) -> None:
    text = (fleet_dir / "fleet.toml").read_text().replace('policy = "ops"\n', "[agent.policy]\nbudget = 1\n")
    (fleet_dir / "fleet.toml").write_text(text)
    [error] = errors_of(fleet_dir)
    assert error.startswith("fleet.toml:7:1: agent 'watch' policy: 'policy' names a file in policies/")


def test_conflict_blames_the_last_file(fleet_dir: Path) -> None:
    (fleet_dir / "policies/ops.toml").write_text('[llm]\nmodel = "claude-3"\n')
    assert errors_of(fleet_dir) == [
        "policies/ops.toml:2:9: llm.model 'claude-3' is not allowed by llm.models ['fleet/demo', 'gpt-*']"
    ]


def test_conflict_caused_by_an_agent_table(fleet_dir: Path) -> None:
    text = (fleet_dir / "fleet.toml").read_text() + "[agent.restart]\nbackoff_initial_s = 99\n"
    (fleet_dir / "fleet.toml").write_text(text)
    assert errors_of(fleet_dir) == [
        "fleet.toml:18:21: restart.backoff_initial_s (99) is greater than restart.backoff_max_s (30) "
        "(effective policy of agent 'drafter')"
    ]


def test_unknown_names_in_overrides(fleet_dir: Path) -> None:
    (fleet_dir / "policies/overrides.toml").write_text(
        "[agent.wacth.budget]\nusd_per_day = 1\n\n[policy.opps.budget]\nusd_per_day = 1\n"
    )
    assert errors_of(fleet_dir) == [
        "policies/overrides.toml:1:1: unknown agent 'wacth'; did you mean 'watch'?",
        "policies/overrides.toml:4:1: unknown policy 'opps'; did you mean 'ops'?",
    ]


def test_all_errors_of_all_files_are_collected(fleet_dir: Path) -> None:
    (fleet_dir / "policies/ops.toml").write_text("[budget]\nusd_per_day = -1\n")
    (fleet_dir / "policies/drafting.toml").write_text("[llm\n")
    text = (fleet_dir / "fleet.toml").read_text().replace('policy = "ops"', 'policy = "nope"')
    (fleet_dir / "fleet.toml").write_text(text.replace("replicas = 2", "replicas = 0"))
    errors = errors_of(fleet_dir)
    assert [e.split(":")[0] for e in errors] == [
        "fleet.toml",
        "fleet.toml",
        "policies/drafting.toml",
        "policies/ops.toml",
    ]


def test_non_utf8_file(fleet_dir: Path) -> None:
    (fleet_dir / "policies/ops.toml").write_bytes(b"goal = '\xff'\n")
    [error] = errors_of(fleet_dir)
    assert error.startswith("policies/ops.toml:1:1: not UTF-8 text")


def test_editor_droppings_are_not_policies(fleet_dir: Path) -> None:
    (fleet_dir / "policies/.ops.toml.swp").write_bytes(b"\x00garbage")
    (fleet_dir / "policies/ops.toml~").write_text("garbage")
    (fleet_dir / "policies/4913").write_text("")
    assert "policies/ops.toml~" not in load_book(fleet_dir).files


# -- validate_text, versions, diffs ----------------------------------------------


def test_validate_text(fleet_dir: Path) -> None:
    assert validate_text(fleet_dir, "policies/ops.toml", "[budget]\nusd_per_day = 3\n") == []
    [error] = validate_text(fleet_dir, "policies/ops.toml", "[budget]\nusd_per_day = -3\n")
    assert str(error) == "policies/ops.toml:2:15: budget.usd_per_day: must be >= 0, got -3"
    # a new policy file, and a fleet.toml that needs it
    assert validate_text(fleet_dir, str(fleet_dir / "policies/new.toml"), "") == []
    text = (fleet_dir / "fleet.toml").read_text().replace('"ops"', '"new"')
    assert [e.code for e in validate_text(fleet_dir, "fleet.toml", text)] == ["unknown_name"]
    assert validate_text(fleet_dir, "notes.txt", "")[0].message.startswith("not a policy file")
    # nothing was written
    assert not (fleet_dir / "policies/new.toml").exists()


def test_content_hash_snapshot_and_diff(fleet_dir: Path) -> None:
    a = load_book(fleet_dir)
    assert load_book(fleet_dir).content_hash == a.content_hash
    assert json.loads(a.snapshot()) == a.files
    (fleet_dir / "policies/ops.toml").write_text((fleet_dir / "policies/ops.toml").read_text().replace("2.0", "2.5"))
    (fleet_dir / "policies/new.toml").write_text("goal = 'g'\n")
    b = load_book(fleet_dir)
    assert b.content_hash != a.content_hash
    diff = book_diff(a, b)
    assert "--- a/policies/ops.toml\n+++ b/policies/ops.toml\n" in diff
    assert "-usd_per_day = 2.0\n+usd_per_day = 2.5\n" in diff
    assert "--- /dev/null\n+++ b/policies/new.toml\n" in diff
    assert book_diff(b, b) == ""
    assert book_diff(None, a).count("--- /dev/null") == len(a.files)
    changes = b.changes_from(a)
    assert changes.policy == {"watch": ("budget.usd_per_day",)}
    assert not changes.added and not changes.respawn
    assert set(a.changes_from(None).added) == {"watch", "drafter"}


def test_book_is_immutable(fleet_dir: Path) -> None:
    book = load_book(fleet_dir)
    with pytest.raises(AttributeError):
        book.content_hash = "x"  # type: ignore[misc]


# -- the locator -------------------------------------------------------------------


def test_locator_handles_quoted_keys_multiline_values_and_inline_tables() -> None:
    text = (
        'title = """\n[not.a.table]\nkey = 1\n"""\n'
        '[agent."my.agent".budget]\n'
        "usd_per_day = 1\n"
        "[[agent]]\n"
        "name = 'a'\n"
        "[[agent]]\n"
        'env = { A = "1", B = 2 }\n'
        "arr = [[1, 2], [3,\n  4]]\n"
    )
    loc = TomlLocator(text)
    assert ("not",) not in loc.keys
    assert loc.find(("agent", "my.agent", "budget", "usd_per_day"), value=True) == (6, 15)
    assert loc.find(("agent", 1), value=False) == (9, 1)
    assert loc.find(("agent", 1, "env", "B"), value=True) == (10, 22)
    assert loc.find(("agent", 1, "arr", 1, 1), value=True) == (12, 3)
    assert loc.find(("agent", 0, "missing")) == (7, 1)
    assert loc.find(("nothing",)) == (1, 1)


# Any document tomli-w can write, the locator finds every key of.
_keys = st.from_regex(r"[A-Za-z0-9_.-]{1,8}", fullmatch=True)
# No "\r": TOML normalises newlines inside multi-line strings, which this test writes.
_text = st.text(st.characters(blacklist_characters="\r"), max_size=12)
_scalars = st.one_of(
    st.integers(-1000, 1000),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    _text,
    st.lists(st.text(st.characters(blacklist_characters="\r"), max_size=5), max_size=3),
)


@settings(max_examples=150, deadline=None)
@given(
    st.dictionaries(_keys, st.dictionaries(_keys, st.dictionaries(_keys, _scalars, max_size=3), max_size=3), max_size=3)
)
def test_locator_finds_every_key_tomli_w_writes(data: dict[str, Any]) -> None:
    text = tomli_w.dumps(data, multiline_strings=True)
    assert tomllib.loads(text) == data
    loc = TomlLocator(text)
    lines = text.split("\n")
    for table, sub in data.items():
        for name, leaves in sub.items():
            for key, value in leaves.items():
                line, col = loc.find((table, name, key))
                quoted = key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)
                assert lines[line - 1][col - 1 :].startswith(quoted), (text, table, name, key)
                if isinstance(value, list):
                    for i in range(len(value)):
                        assert (table, name, key, i) in loc.values
