"""Tokens (issue, replace, revoke, bounded) and model aliases (stable first match), without a server."""

from __future__ import annotations

from fleet.gateway.http.identity import AgentTokens, token_from_headers
from fleet.gateway.http.models import listed_models, resolve_model
from fleet.gateway.http.server import _host_name

from .conftest import policy


def test_a_token_names_one_instance_until_its_run_ends() -> None:
    tokens = AgentTokens()
    first = tokens.issue("writer")
    assert tokens.resolve(first) == "writer" and first.startswith("fleet-") and len(first) >= 6 + 43
    second = tokens.issue("writer")  # the next run: the old token stops working
    assert tokens.resolve(first) is None and tokens.resolve(second) == "writer"
    tokens.issue("other")
    assert len(tokens) == 2  # one per instance, however many runs
    tokens.revoke("writer")
    assert tokens.resolve(second) is None and len(tokens) == 1
    for bad in (None, "", second[:-1], second + "x", "x" * 10_000, "fleet-\udcff"):
        assert tokens.resolve(bad) is None


def test_the_token_is_read_from_bearer_or_x_api_key() -> None:
    assert token_from_headers("Bearer abc", None) == "abc"
    assert token_from_headers("bearer  abc ", None) == "abc"
    assert token_from_headers(None, "k") == "k"
    assert token_from_headers("Bearer abc", "k") == "k"
    assert token_from_headers("Basic abc", None) is None
    assert token_from_headers("Bearer ", None) is None


def test_aliases_exact_first_then_longest_pattern_whatever_the_order() -> None:
    for aliases in (
        {"*": "fake/any", "gpt-4o*": "fake/four", "gpt-4o-mini": "fake/mini"},
        {"gpt-4o-mini": "fake/mini", "gpt-4o*": "fake/four", "*": "fake/any"},
    ):
        llm = policy(llm={"aliases": aliases}).llm
        assert resolve_model(llm, "gpt-4o-mini") == "fake/mini"
        assert resolve_model(llm, "gpt-4o-2024") == "fake/four"
        assert resolve_model(llm, "claude-x") == "fake/any"
        assert resolve_model(llm, None) == "fake/model"  # no name: the policy's default
    assert resolve_model(policy(llm={"aliases": {}}).llm, "gpt-4o") == "gpt-4o"


def test_models_listed_are_concrete_and_allowed() -> None:
    llm = policy(llm={"models": ["fake/*", "other/x"], "aliases": {"gpt-4o": "fake/a", "bad": "nope/z"}}).llm
    assert listed_models(llm) == ["fake/model", "other/x", "gpt-4o", "fake/a"]


def test_host_names() -> None:
    assert _host_name("127.0.0.1:8080") == "127.0.0.1"
    assert _host_name("[::1]:8080") == "::1"
    assert _host_name("localhost") == "localhost"
    assert _host_name("evil.example:80") == "evil.example"


def test_an_alias_to_a_model_the_policy_does_not_allow_is_a_policy_error(tmp_path) -> None:
    from fleet.policy import load_book
    from fleet.policy.errors import PolicyErrors

    (tmp_path / "fleet.toml").write_text(
        '[[agent]]\nname = "a"\ncommand = ["true"]\n[agent.llm]\nmodels = ["fleet/demo"]\n'
        'aliases = { "gpt-*" = "openai/gpt-4o" }\n'
    )
    try:
        load_book(tmp_path)
        raise AssertionError("loaded")
    except PolicyErrors as exc:
        assert "llm.aliases maps 'gpt-*' to 'openai/gpt-4o'" in str(exc)
