"""Where the demo runs from: always the per-user copy, never a checkout's tracked files."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet.paths import bundled_demo, resolve_fleet_dir


def test_the_checkout_demo_runs_from_the_per_user_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEET_DEMO_DIR", str(tmp_path / "demo"))
    checkout = bundled_demo()
    before = (checkout / "policies" / "growth.toml").read_text()
    for where in (checkout, None):
        if where is None:
            monkeypatch.chdir(checkout)
        d, is_demo = resolve_fleet_dir(where)
        assert (d, is_demo) == (tmp_path / "demo", True)
    assert (tmp_path / "demo" / "policies" / "growth.toml").read_text() == before
    (tmp_path / "demo" / "policies" / "growth.toml").write_text(before + "\n# edited by the tour\n")
    assert (checkout / "policies" / "growth.toml").read_text() == before


def test_a_fleet_of_ones_own_is_used_where_it_is(tmp_path: Path) -> None:
    (tmp_path / "fleet.toml").write_text('[[agent]]\nname = "a"\ncommand = ["true"]\n')
    assert resolve_fleet_dir(tmp_path) == (tmp_path.resolve(), False)
