"""``python -m bench``: our fleet against supervisord, circus, honcho, pm2 and mprocs, in one run.

Why one driver: a ratio is only honest when both sides ran the same workload
on the same machine minutes apart. This runs every scenario against every tool
present (absent ones are listed with how to install them — nothing is
installed here), takes the median of the repeats, prints one table with the
ratio of our fleet against the best peer (> 1 = we win), and writes
``bench/results/latest.json`` with every run's raw figures and the machine.

    python -m bench [--quick] [--only flood,idle] [--peers fleet,supervisord] [--repeats N]
"""

from __future__ import annotations

import argparse
import json
import math
import re
import subprocess
import sys
import time
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench import scenarios as sc
from bench.common import machine, median, neutral_workload_env
from bench.peers import Peer, all_peers

RESULTS = Path(__file__).resolve().parent / "results"

#: (row label, scenario key, metric, better = "high" | "low", format)
ROWS: list[tuple[str, str, str, str, str]] = [
    ("1 flood: wall until all persisted (s)", "flood", "wall_s", "low", "{:.2f}"),
    ("1 flood: lines/s persisted", "flood", "lines_per_s", "high", "{:,.0f}"),
    ("1 flood: supervisor CPU (s)", "flood", "cpu_s", "low", "{:.2f}"),
    ("1 flood: supervisor CPU, an attached console's own aside (s)", "flood", "supervisor_cpu_s", "info", "{:.2f}"),
    ("1 flood: the attached console's own CPU (s)", "flood", "console_cpu_s", "info", "{:.2f}"),
    ("1 flood: supervisor peak RSS (MB)", "flood", "peak_rss_mb", "low", "{:.0f}"),
    ("1 flood: peak RSS of the supervisor process alone (MB)", "flood", "peak_rss_main_mb", "low", "{:.0f}"),
    ("1 flood: supervisor peak USS, memory no other process shares (MB)", "flood", "peak_uss_mb", "low",
     "{:.0f}"),
    ("1 flood: lines lost (+dup)", "flood", "lost_dup", "low", "{}"),
    ("1 flood: the 20 writers' own CPU (s)", "flood", "writers_cpu_s", "info", "{:.1f}"),
    ("1b block flood: wall until all persisted (s)", "flood_blocks", "wall_s", "low", "{:.2f}"),
    ("1b block flood: lines/s persisted", "flood_blocks", "lines_per_s", "high", "{:,.0f}"),
    ("1b block flood: supervisor CPU during the flood (s)", "flood_blocks", "cpu_s", "low", "{:.2f}"),
    ("1b block flood: CPU-s of indexing per million lines, after", "flood_blocks", "index_cpu_s_per_mlines", "info",
     "{:.2f}"),
    ("1b block flood: index caught up, s after drained", "flood_blocks", "index_wall_s", "info", "{:.1f}"),
    ("1b block flood: log writer's longest wait for the db lock (ms)", "flood_blocks", "writer_lock_wait_max_ms",
     "info", "{:.1f}"),
    ("1b block flood: supervisor peak RSS (MB)", "flood_blocks", "peak_rss_mb", "low", "{:.0f}"),
    ("1b block flood: peak RSS of the supervisor process alone (MB)", "flood_blocks", "peak_rss_main_mb", "low",
     "{:.0f}"),
    ("1b block flood: supervisor peak USS, memory no other process shares (MB)", "flood_blocks", "peak_uss_mb",
     "low", "{:.0f}"),
    ("1b block flood: lines lost (+dup)", "flood_blocks", "lost_dup", "low", "{}"),
    ("1b block flood: the 20 writers' own CPU (s)", "flood_blocks", "writers_cpu_s", "info", "{:.1f}"),
    ("1c 2 busy agents + block flood: their iterations (M)", "busy", "busy_iters_m", "high", "{:.0f}"),
    ("1c the same, fleet with indexing off (M)", "busy", "busy_iters_index_off_m", "info", "{:.0f}"),
    ("1c busy agents' progress lost to indexing (%)", "busy", "busy_loss_pct", "info", "{:.1f}"),
    ("1c supervisor CPU while they ran (s)", "busy", "busy_window_cpu_s", "low", "{:.2f}"),
    ("1c the same, fleet with indexing off (s)", "busy", "busy_window_cpu_s_index_off", "info", "{:.2f}"),
    ("1c log writer's longest wait for the db lock (ms)", "busy", "writer_lock_wait_max_ms", "info", "{:.1f}"),
    ("2 idle x200: supervisor CPU %", "idle", "cpu_pct", "low", "{:.3f}"),
    ("2 idle x200: supervisor RSS (MB)", "idle", "rss_mb", "low", "{:.0f}"),
    ("2 idle x200: start all (s)", "idle", "start_all_s", "low", "{:.2f}"),
    ("3 crash: exit→restart, default policy (ms)", "crash", "first_restart_ms", "low", "{:.0f}"),
    ("3 crash: exit→restart, min delay (ms)", "crash_fast", "first_restart_ms", "low", "{:.0f}"),
    ("3 crash: starts in window, default policy", "crash_window", "starts", "info", "{}"),
    ("3 crash: last start at (s), default policy", "crash_window", "last_start_s", "info", "{:.1f}"),
    ("4 pause: CLI → state T (ms)", "pause", "cli_stop_ms", "low", "{:.0f}"),
    ("4 resume: CLI → running (ms)", "pause", "cli_cont_ms", "low", "{:.0f}"),
    ("4 pause: API → state T (ms)", "pause", "api_stop_ms", "low", "{:.1f}"),
    ("4 resume: API → running (ms)", "pause", "api_cont_ms", "low", "{:.1f}"),
    ("5 config: add program → running (ms)", "config", "add_to_running_ms", "low", "{:.0f}"),
    ("x console attached, real flood: key → new screen painted, p50 (ms)", "flood", "key_ms_all", "info", "{:.0f}"),
    ("x console attached, real flood: key → new screen painted, p99 (ms)", "flood", "key_ms_all:p99", "info",
     "{:.0f}"),
    ("x console attached, real flood: key presses timed, per run", "flood", "key_samples", "info", "{}"),
    ("x console: key p → cell 'paused', 100k lines/s fake fleet, p50 (ms)", "extras", "console_key_p50_ms", "info",
     "{:.1f}"),
    ("x policy save → applied, median (ms)", "extras", "policy_reload_ms", "info", "{:.1f}"),
    ("x gateway overhead per LLM call (ms)", "extras", "gateway_overhead_ms", "info", "{:.3f}"),
]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def med(runs: list[dict[str, Any]], metric: str) -> float | None:
    vals: list[float] = []
    metric, _, pct = metric.partition(":p")  # "key_ms_all:p99": the 99th percentile of every run's samples
    for r in runs:
        if metric == "lost_dup":
            if "lost" in r:
                vals.append(r["lost"] + r["duplicated"])
            continue
        v = r.get(metric)
        if isinstance(v, list):
            vals.extend(x for x in v if x is not None)
        elif isinstance(v, bool):
            vals.append(float(v))
        elif isinstance(v, int | float) and not (isinstance(v, float) and math.isnan(v)):
            vals.append(v)
    if metric == "lost_dup" and vals:
        return max(vals)  # the worst run: one lost line anywhere is a loss
    if pct and vals:
        vals.sort()
        return vals[min(len(vals) - 1, math.ceil(int(pct) / 100 * len(vals)) - 1)]
    return median(vals)


def interleaved_floods(peers: list[Peer], s: sc.Settings, scen: str = "flood") -> dict[str, dict[str, Any]]:
    """The flood, one run of each peer per round: this shared machine's speed drifts by
    ±10 % over minutes (the writers' own CPU for the same work moves as much), so
    running all of one peer's repeats before the next would compare different machines.
    """
    out: dict[str, dict[str, Any]] = {}
    runs: dict[str, list[dict[str, Any]]] = {}
    active = []
    for p in peers:
        if "flood" in p.supports:
            runs[p.name] = []
            active.append(p)
        else:
            out[p.name] = {"na": p.na.get("flood", "not applicable")}
    fn = {"flood": sc.flood, "flood_blocks": sc.flood_blocks, "busy": sc.busy}[scen]
    for i in range(s.repeats):
        for p in list(active):
            log(f"{scen}: {p.name} run {i + 1}/{s.repeats} ...")
            t0 = time.time()
            try:
                run = fn(p, s)
            except Exception as exc:
                out[p.name] = {"error": repr(exc), "trace": traceback.format_exc()[-2000:]}
                log(f"  error: {exc!r}")
                active.remove(p)
                continue
            runs[p.name].append(run)
            if run.get("leftovers"):
                log(f"  {run['leftovers']} leftover process(es) had to be killed")
            log(f"  {p.name} {scen}: {time.time() - t0:.1f}s")
            if run["timed_out"]:
                active.remove(p)  # one bounded run says enough; repeating it would only cost minutes
    for name, rs in runs.items():
        if name not in out:
            out[name] = {"runs": rs}
    return out


def run_scenario(peer: Peer, name: str, s: sc.Settings) -> list[dict[str, Any]]:
    if name == "flood":
        runs = []
        for _ in range(s.repeats):
            runs.append(sc.flood(peer, s))
            if runs[-1]["timed_out"]:
                break  # one bounded run says enough; repeating it would only cost minutes
        return runs
    if name == "idle":
        return [sc.idle(peer, s) for _ in range(s.repeats)]
    if name == "crash":
        return [sc.crash(peer, s, fast=False) for _ in range(s.repeats)]
    if name == "crash_fast":
        return [sc.crash(peer, s, fast=True) for _ in range(s.repeats)]
    if name == "crash_window":
        return [sc.crash(peer, s, fast=False, window=s.crash_window)]
    if name == "pause":
        return [sc.pause(peer, s)]  # repeats happen inside one supervisor: ``repeats`` pause/resume cycles
    if name == "config":
        return [sc.config(peer, s)]  # ``repeats`` additions to one running supervisor
    raise ValueError(name)


def extras(quick: bool) -> dict[str, Any]:
    """Our figures with no peer equivalent, from the other engineers' benches where they exist."""
    out: dict[str, Any] = {}
    py = sys.executable
    reload_all = r"^\s*all\s+\d+\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)"
    _scrape(out, "policy_reload_error", [py, "-m", "bench.policy_reload", "-n", "10" if quick else "50"], 300,
            [("policy_reload_ms", reload_all, 1), ("policy_reload_worst_ms", reload_all, 3)])
    args = ["--calls", "100", "--seconds", "2"] if quick else ["--calls", "500", "--seconds", "5"]
    _scrape(out, "gateway_overhead_error", [py, "-m", "bench.gateway_overhead", *args], 600,
            [("gateway_overhead_ms", r"gateway overhead\s+median\s+([\d.]+)\s*ms", 1),
             ("gateway_alone_us", r"gateway alone.*median\s+([\d.]+)\s*us", 1)])
    script = Path(__file__).resolve().parent / "console_keypress.py"
    key = r"state cell 'paused': p50 ([\d.]+) ms, p99 ([\d.]+) ms"
    _scrape(out, "console_key_error", [py, str(script), "--samples", "15" if quick else "40"], 600,
            [("console_key_p50_ms", key, 1), ("console_key_p99_ms", key, 2),
             ("console_cpu_pct_at_100k_lines_s", r"console share: ~([\d.]+)% of one core", 1)])
    return out


def _scrape(out: dict[str, Any], error_key: str, argv: list[str], timeout: float,
            figures: list[tuple[str, str, int]]) -> None:
    """Run one of our own benches and pick its figures out of what it prints.

    ``figures`` are (field, regex, group); when the first is not found the bench's
    last output goes to ``error_key`` instead, so a broken bench shows in the JSON.
    """
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except Exception as exc:
        out[error_key] = repr(exc)
        return
    for i, (field, regex, group) in enumerate(figures):
        m = re.search(regex, r.stdout, re.M)
        if m:
            out[field] = float(m.group(group))
        elif i == 0:
            out[error_key] = (r.stdout + r.stderr)[-300:]
            return


def ratio(ours: float | None, best: float | None, better: str) -> str:
    if ours is None or best is None or better == "info":
        return ""
    if better == "high":
        return f"{ours / best:.2f}x" if best else "inf"
    if ours == 0:
        return "inf" if best else "="
    return f"{best / ours:.2f}x"


def table(results: dict[str, dict[str, Any]], cols: list[str]) -> str:
    peers = [c for c in cols if not c.startswith("fleet")]
    head = ["metric", *cols, "best peer", "fleet vs best"]
    rows = [head]
    for label, scen, metric, better, fmt in ROWS:
        row = [label]
        vals: dict[str, float | None] = {}
        for c in cols:
            cell = results.get(scen, {}).get(c)
            if scen == "extras":
                v = results.get("extras", {}).get(metric) if c == "fleet" else None
                vals[c] = v
                row.append(fmt.format(v) if v is not None else ("" if c != "fleet" else "n/a"))
                continue
            if cell is None:
                row.append("-")
                vals[c] = None
            elif "na" in cell:
                row.append("n/a")
                vals[c] = None
            elif "error" in cell:
                row.append("ERR")
                vals[c] = None
            else:
                v = med(cell["runs"], metric)
                vals[c] = v
                row.append(fmt.format(v if metric != "lost_dup" else int(v)) if v is not None else "n/a")
        best_peer, best = None, None
        if better in ("high", "low"):
            for p in peers:
                v = vals.get(p)
                if v is None:
                    continue
                if best is None or (v > best if better == "high" else v < best):
                    best_peer, best = p, v
        row.append(best_peer or "")
        row.append(ratio(vals.get("fleet"), best, better) if metric != "lost_dup" else "")
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = []
    for i, r in enumerate(rows):
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |")
        if i == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller N and 2 repeats (a smoke test, minutes)")
    ap.add_argument("--only", default="", help=f"comma list of scenarios: {','.join(sc.SCENARIOS)},extras")
    ap.add_argument("--peers", default="", help="comma list: fleet,fleet+console,supervisord,circus,honcho,pm2,mprocs")
    ap.add_argument("--repeats", type=int, default=0, help="repeats per scenario (default 5, quick 2)")
    ap.add_argument("--flood-lines", type=int, default=0, help="lines per flood writer (default 200000)")
    ap.add_argument("--flood-procs", type=int, default=0, help="flood writers (default 20)")
    ap.add_argument("--profile", type=Path, default=None, help="py-spy our supervisor during the flood into DIR")
    ap.add_argument("--flood-settle", type=float, default=None, help="s between writers up and go (default 0.3)")
    ap.add_argument("--idle-settle", type=float, default=None, help="s between all started and the idle window")
    ap.add_argument("--poll", type=float, default=0.0, help="flood completion poll interval, s (default 0.02)")
    ap.add_argument("--merge", type=Path, default=None,
                    help="start from this results file and replace only the columns run now (e.g. re-run fleet)")
    ap.add_argument("--out", type=Path, default=RESULTS / "latest.json")
    a = ap.parse_args(argv)

    neutral_workload_env()
    s = sc.Settings.quick() if a.quick else sc.Settings()
    if a.repeats:
        s.repeats = a.repeats
    if a.flood_lines:
        s.flood_lines = a.flood_lines
    if a.flood_procs:
        s.flood_procs = a.flood_procs
    if a.poll:
        s.poll = a.poll
    s.profile_dir = a.profile
    if a.flood_settle is not None:
        s.flood_settle = a.flood_settle
    if a.idle_settle is not None:
        s.idle_settle = a.idle_settle
    only = [x for x in a.only.split(",") if x] or [*sc.SCENARIOS, "extras"]
    wanted = [x for x in a.peers.split(",") if x]
    peers = [p for p in all_peers() if not wanted or p.name in wanted]

    present: list[Peer] = []
    absent: dict[str, str] = {}
    versions: dict[str, str] = {}
    for p in peers:
        why = p.missing()
        if why:
            absent[p.name] = why
            log(f"skip {p.name}: {why}")
        else:
            present.append(p)
            try:
                versions[p.name] = p.version()
            except Exception as exc:
                versions[p.name] = f"? ({exc})"

    results: dict[str, dict[str, Any]] = {}
    base: dict[str, Any] = {}
    if a.merge is not None:
        base = json.loads(a.merge.read_text())
        results = base["results"]
        versions = {**base.get("versions", {}), **versions}
    expand = {"crash": ["crash", "crash_fast", "crash_window"]}
    t_start = time.time()
    for scen in only:
        if scen == "extras":
            log("extras: policy reload, gateway overhead")
            results["extras"] = extras(a.quick)
            continue
        for sub in expand.get(scen, [scen]):
            results.setdefault(sub, {})
            if sub in ("flood", "flood_blocks", "busy"):
                results[sub].update(interleaved_floods(present, s, sub))
                continue
            for p in present:
                if scen not in p.supports:
                    results[sub][p.name] = {"na": p.na.get(scen, "not applicable")}
                    continue
                log(f"{sub}: {p.name} ...")
                t0 = time.time()
                try:
                    runs = run_scenario(p, sub, s)
                    results[sub][p.name] = {"runs": runs}
                    left = sum(r.get("leftovers", 0) for r in runs)
                    if left:
                        log(f"  {left} leftover process(es) had to be killed")
                except Exception as exc:
                    results[sub][p.name] = {"error": repr(exc), "trace": traceback.format_exc()[-2000:]}
                    log(f"  error: {exc!r}")
                log(f"  {p.name} {sub}: {time.time() - t0:.1f}s")
    cols = [p.name for p in present]
    if base:
        order = [p.name for p in all_peers()]
        have = {c for scen_res in results.values() if isinstance(scen_res, dict) for c in scen_res}
        cols = [c for c in order if c in have or c in cols]
    text = table(results, cols)
    print(text)
    if absent:
        print("\nabsent: " + "; ".join(f"{k}: {v}" for k, v in absent.items()))
    notes = {p.name: p.na for p in present if p.na}
    if notes:
        print("n/a: " + "; ".join(f"{k} {s_}: {why}" for k, v in notes.items() for s_, why in v.items()))
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps({
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t_start)),
        "merged_from": {"file": str(a.merge), "when": base.get("when"), "columns_rerun": [p.name for p in present]}
        if base else None,
        "duration_s": round(time.time() - t_start, 1),
        "machine": asdict(machine()),
        "settings": asdict(s),
        "versions": versions,
        "absent": absent or base.get("absent", {}),
        "na": notes,
        "results": results,
        "table": text,
    }, indent=1, default=str))
    log(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
