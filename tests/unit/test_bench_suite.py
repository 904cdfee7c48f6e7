"""The peer benchmark's own arithmetic: a wrong loss count or ratio would make the table lie."""

from __future__ import annotations

import os

from bench.__main__ import med, ratio, table
from bench.common import count_flood_lines, neutral_workload_env

PAD = "x" * 85


def line(proc: int, i: int) -> str:
    return f"{proc:02d} {i:07d} {PAD}\n"


def test_flood_check_counts_lost_duplicated_and_malformed() -> None:
    lines = [line(p, i) for p in range(2) for i in range(5)]
    del lines[3]  # proc 0, line 3 lost
    lines.append(line(1, 2))  # duplicated
    lines.append("garbage\n")
    got = count_flood_lines(lines, procs=2, per_proc=5)
    assert (got["found"], got["lost"], got["duplicated"], got["malformed"]) == (9, 1, 1, 1)


def test_flood_check_accepts_a_peer_prefix() -> None:
    prefixed = [f"12:00:01 flood00 | {line(0, i)}" for i in range(3)]
    assert count_flood_lines(prefixed, procs=1, per_proc=3)["lost"] == 0


def test_loss_is_the_worst_run_not_the_median() -> None:
    runs = [{"lost": 0, "duplicated": 0}, {"lost": 0, "duplicated": 0}, {"lost": 7, "duplicated": 1}]
    assert med(runs, "lost_dup") == 8


def test_ratio_direction() -> None:
    assert ratio(2.0, 4.0, "low") == "2.00x"  # half the time of the best peer: we win 2x
    assert ratio(100.0, 50.0, "high") == "2.00x"
    assert ratio(1.0, 2.0, "info") == ""


def test_table_picks_the_best_peer_per_metric() -> None:
    results = {"flood": {
        "fleet": {"runs": [{"wall_s": 3.0, "lost": 0, "duplicated": 0}]},
        "supervisord": {"runs": [{"wall_s": 2.0, "lost": 0, "duplicated": 0}]},
        "circus": {"runs": [{"wall_s": 4.0, "lost": 0, "duplicated": 0}]},
        "mprocs": {"na": "a TUI"},
    }}
    text = table(results, ["fleet", "supervisord", "circus", "mprocs"])
    row = next(r for r in text.splitlines() if "wall until all persisted" in r)
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1:] == ["3.00", "2.00", "4.00", "n/a", "supervisord", "0.67x"]


def test_workload_env_is_block_buffered(monkeypatch) -> None:
    monkeypatch.setenv("PYTHONUNBUFFERED", "1")
    neutral_workload_env()
    assert "PYTHONUNBUFFERED" not in os.environ


def test_absent_peer_says_what_is_missing_and_how_to_install() -> None:
    from bench.peers import Peer

    class Nowhere(Peer):
        name = "nowhere"
        install = "pip install nowhere"
        exes = ("sh", "no-such-supervisor-here")

    assert Nowhere().missing() == "no-such-supervisor-here not found; install: pip install nowhere"


def test_scrape_picks_figures_or_records_the_failure() -> None:
    import sys

    from bench.__main__ import _scrape

    out: dict[str, object] = {}
    printer = [sys.executable, "-c", "print('p50 1.5 ms, p99 9.0 ms')"]
    figures = [("p50", r"p50 ([\d.]+) ms, p99 ([\d.]+)", 1), ("p99", r"p50 ([\d.]+) ms, p99 ([\d.]+)", 2)]
    _scrape(out, "err", printer, 60, figures)
    assert out == {"p50": 1.5, "p99": 9.0}
    out = {}
    _scrape(out, "err", [sys.executable, "-c", "print('nothing')"], 60, figures)
    assert list(out) == ["err"] and "nothing" in str(out["err"])
