"""Files that used to kill the policy watcher or crash ``fleet policy check``.

A deeply nested TOML file raised ``RecursionError`` (a ``RuntimeError``), which
the watcher took for a failed watch and raised again inside its handler: no
``policy_error``, and every later save was ignored. Now every error while
reading or checking a file is a ``PolicyError`` with its path, and the next
valid save applies.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fleet.policy import Policy, PolicyErrors, load_book
from fleet.policy import book as book_module

from .test_policy_cli import run
from .test_policy_watcher import Watched, backend, ops_text, usd, watched  # noqa: F401 - fixtures

DEEP = "[budget]\nusd_per_day = " + "[" * 100_000 + "\n"


def test_load_book_reports_deep_nesting_as_a_syntax_error(fleet_dir: Path) -> None:
    (fleet_dir / "policies/ops.toml").write_text(DEEP)
    with pytest.raises(PolicyErrors) as exc:
        load_book(fleet_dir)
    (err,) = exc.value.errors
    assert (err.path, err.line, err.code) == ("policies/ops.toml", 2, "syntax")
    assert "nested deeper than 100 levels" in err.message


def test_load_book_turns_any_unexpected_error_into_a_policy_error(fleet_dir: Path, monkeypatch) -> None:
    def broken(*_a, **_k):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(Policy, "model_validate", classmethod(broken))
    with pytest.raises(PolicyErrors) as exc:
        load_book(fleet_dir)
    assert {e.path for e in exc.value.errors} == {"policies/default.toml", "policies/ops.toml",
                                                  "policies/drafting.toml"}
    assert all("cannot be checked: RecursionError" in e.message for e in exc.value.errors)
    # Outside any one file's checks, the error is pinned on fleet.toml.
    monkeypatch.setattr(book_module, "_tidy", broken)
    with pytest.raises(PolicyErrors) as exc:
        load_book(fleet_dir)
    assert exc.value.errors[-1].path == "fleet.toml"


def test_check_prints_path_line_col_instead_of_a_traceback(fleet_dir: Path) -> None:
    (fleet_dir / "policies/ops.toml").write_text(DEEP)
    (fleet_dir / "policies/drafting.toml").write_bytes(b"[llm]\nmodel = \"\xff\xfe\"\n")
    code, out, err = run(fleet_dir, "check")
    assert code == 1, out + err
    assert "Traceback" not in out + err
    lines = out.splitlines()
    assert lines[0].startswith("policies/drafting.toml:1:1: not UTF-8 text")
    assert lines[1].startswith("policies/ops.toml:2:")
    assert lines[1].endswith("TOML syntax error: arrays or inline tables nested deeper than 100 levels")


async def test_watcher_survives_bad_files_and_applies_the_next_valid_save(
    watched: Watched,  # noqa: F811
    fleet_dir: Path,
) -> None:
    ops = fleet_dir / "policies/ops.toml"
    ops.write_text(DEEP)
    (err,) = await watched.error()
    assert err.path == "policies/ops.toml" and "nested deeper" in err.message

    ops.write_bytes(b"[budget]\nusd_per_day = \"\xff\"\n")  # not UTF-8
    (err,) = await watched.error()
    assert err.path == "policies/ops.toml" and "not UTF-8" in err.message

    ops.unlink()
    os.symlink(ops.name, ops)  # a symlink loop: ELOOP on read, even for root
    errors = await watched.error()
    assert any(e.path == "policies/ops.toml" and "cannot read" in e.message for e in errors), errors

    ops.unlink()
    ops.write_text(ops_text(9.0))
    book = await watched.change()
    assert usd(book) == 9.0
