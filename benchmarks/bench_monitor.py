"""Benchmark of session-by-session rupture monitoring (issue 21).

Writes ``benchmarks/results/monitor_benchmark.{csv,md,json}``,
``monitor_delays.csv`` and ``monitor_calibration.csv``.

    nice python benchmarks/bench_monitor.py               # 3 replicates x 400 + 400 dyads
    nice python benchmarks/bench_monitor.py --quick       # 1 replicate x 150 + 150 dyads
    nice python benchmarks/bench_monitor.py --source world:balanced_wai --prefix monitor_world_balanced_wai
    nice python benchmarks/bench_monitor.py --source mypkg.worlds:streams

Each replicate draws a *reference* cohort (finished treatments), fits the monitoring
priors on it (``fit_priors``), draws a *new* cohort from the same source and
streams it: every session of every dyad is scored using only the sessions up to it
(``at.monitor`` does exactly this; a prefix is never shown a later score). The
stream source is pluggable: ``--source`` names a registered source or any
``module:function`` with the signature ``f(n_dyads, seed) -> (sessions, truth)``,
``sessions`` long (dyad, session, score) and ``truth`` indexed by dyad with
``true_class``, ``rupture_session`` and ``repair_session`` (as
``simulate_cohort(...).truth``).

Measured, for thresholds 0.1-0.9 (the issue asks for 0.5-0.9; lower ones show the
trade-off), beside two rule baselines applied online:

detection delay
    for true ``unrepaired_rupture`` dyads, the first alerted session at or after the
    rupture's first dropped session ``r``, minus ``r``; ``within2`` is the share with
    a delay <= 2 sessions (never-flagged dyads count as misses).
repaired ruptures flagged in time
    for true ``v_shaped`` dyads, the share alerted while the drop lasts
    (``r <= t < repair``).
false alarms
    alert onsets (``new_alert``) per 100 observed sessions of true ``linear``
    (stable) dyads, and of ``u_shaped`` dyads (gradual, not sudden, dips);
    ``alert_precision``: the share of all alert onsets that fall in a real drop
    (begun by ``t``, not repaired by ``t``).
calibration
    of ``p_unrepaired`` against the event the model can see at ``t``: a drop began
    at ``r <= t - 1`` (two dropped sessions observed) and has not been repaired by
    ``t``; binned reliability and the Brier score, for all dyads and without the
    ``u_shaped`` ones (whose falling half the model cannot yet tell from a drop).

Baselines (no probability, so no calibration):
``sd2`` — session ``t`` is alerted when its score is more than 2 SD below the mean of
the dyad's previous sessions (at least 3; sample SD); ``td_online`` — the Tang &
DeRubeis (1999) sudden-loss criteria of :mod:`alliancetraj.sudden` (criterion 1 by
the reliable change value with reliability 0.9 and the SD of the first session's
scores) applied at every session to the scores so far: an alert while a detected
sudden drop has not been reversed; ``td_online_13`` the same without the 25%
criterion 2.

Timing: the milliseconds of one update (one dyad, ``latest_only=True``, after a
new session), and of a weekly caseload run (all dyads, ``latest_only=True``), as
medians over repeats. The machine is shared: the load average is recorded.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

import alliancetraj as at
from alliancetraj.monitor import fit_priors, monitor
from alliancetraj.sudden import detect, rci_cutoff

HERE = Path(__file__).resolve().parent
OUT = HERE / "results"
THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
BINS = np.linspace(0.0, 1.0, 11)


# ------------------------------------------------------------------------------ stream sources
def _simulate(n_dyads: int, seed: int, **kwargs) -> tuple[pd.DataFrame, pd.DataFrame]:
    cohort = at.simulate_cohort(n_dyads=n_dyads, seed=seed, **kwargs)
    return cohort.sessions, cohort.truth


SOURCES: dict[str, Callable[[int, int], tuple[pd.DataFrame, pd.DataFrame]]] = {
    "simulate_cohort": _simulate,
    "simulate_cohort_missing": lambda n, s: _simulate(n, s, missing=0.15),
    "simulate_cohort_ar1": lambda n, s: _simulate(n, s, ar1=0.3),
}


def _world(name: str) -> Callable[[int, int], tuple[pd.DataFrame, pd.DataFrame]]:
    from alliancetraj.worlds import simulate_world

    def draw(n_dyads: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
        cohort = simulate_world(name, n_dyads, seed=seed)
        return cohort.sessions, cohort.truth

    return draw


def stream_source(name: str) -> Callable[[int, int], tuple[pd.DataFrame, pd.DataFrame]]:
    """A registered source, ``world:NAME`` (an independent world of
    :mod:`alliancetraj.worlds`, at its own design) or ``module:function``."""
    if name in SOURCES:
        return SOURCES[name]
    if name.startswith("world:"):
        return _world(name.partition(":")[2])
    module, _, func = name.partition(":")
    if not func:
        raise SystemExit(f"unknown source {name!r}: use one of {list(SOURCES)} or module:function")
    return getattr(importlib.import_module(module), func)


# ------------------------------------------------------------------------------- baselines
def _panel(sessions: pd.DataFrame) -> tuple[pd.Index, np.ndarray, np.ndarray]:
    wide = sessions.pivot(index="dyad", columns="session", values="score")
    grid = np.arange(1, int(wide.columns.max()) + 1)
    wide = wide.reindex(columns=grid)
    return wide.index, grid, wide.to_numpy(dtype=float)


def _long_alerts(index: pd.Index, grid: np.ndarray, x: np.ndarray, alert: np.ndarray
                 ) -> pd.DataFrame:
    obs = ~np.isnan(x)
    rows, cols = np.nonzero(obs)
    out = pd.DataFrame({"dyad": index.to_numpy()[rows], "session": grid[cols],
                        "alert": alert[rows, cols]})
    prev = out.groupby("dyad", sort=False)["alert"].shift(fill_value=False).astype(bool)
    out["new_alert"] = out["alert"] & ~prev
    return out


def baseline_sd2(sessions: pd.DataFrame) -> pd.DataFrame:
    """Alert when a score is > 2 SD below the mean of the dyad's previous sessions (>= 3)."""
    index, grid, x = _panel(sessions)
    obs = ~np.isnan(x)
    y = np.where(obs, x, 0.0)
    cnt = np.cumsum(obs, axis=1) - obs
    s1 = np.cumsum(y, axis=1) - y
    s2 = np.cumsum(y**2, axis=1) - y**2
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s1 / cnt
        sd = np.sqrt(np.maximum(s2 - cnt * mean**2, 0.0) / (cnt - 1))
        alert = obs & (cnt >= 3) & (x < mean - 2.0 * sd)
    return _long_alerts(index, grid, x, alert)


def baseline_td(sessions: pd.DataFrame, cutoff: float, criteria=(1, 2, 3)) -> pd.DataFrame:
    """Tang-DeRubeis sudden losses, re-tested at every session on the scores so far."""
    index, grid, x = _panel(sessions)
    alert = np.zeros(x.shape, dtype=bool)
    for t in range(x.shape[1]):
        state = np.zeros(x.shape[0], dtype=bool)
        for row, _p, _mag, reversed_, _v in detect(x[:, : t + 1], cutoff=cutoff,
                                                   direction="decrease", criteria=criteria):
            state[row] |= not reversed_
        alert[:, t] = state
    return _long_alerts(index, grid, x, alert & ~np.isnan(x))


# ------------------------------------------------------------------------------- evaluation
def visible_state(table: pd.DataFrame, truth: pd.DataFrame) -> np.ndarray:
    """True where a drop began at r <= t - 1 and is not repaired by t (the model's event)."""
    tr = truth.reindex(table["dyad"].to_numpy())
    t = table["session"].to_numpy(dtype=float)
    r = tr["rupture_session"].to_numpy(dtype=float)
    e = tr["repair_session"].to_numpy(dtype=float)
    cls = tr["true_class"].astype(str).to_numpy()
    began = (cls != "linear") & (cls != "u_shaped") & (t >= r + 1)
    unrepaired = (cls == "unrepaired_rupture") | (t < e)
    return began & unrepaired


def evaluate(table: pd.DataFrame, truth: pd.DataFrame) -> tuple[dict, pd.Series]:
    """Detection, delay and false-alarm figures of one alert table."""
    tr = truth.reindex(table["dyad"].to_numpy())
    cls = tr["true_class"].astype(str).to_numpy()
    t = table["session"].to_numpy(dtype=float)
    r = tr["rupture_session"].to_numpy(dtype=float)
    e = tr["repair_session"].to_numpy(dtype=float)
    alert = table["alert"].to_numpy(dtype=bool)

    un_dyads = truth.index[truth["true_class"].astype(str) == "unrepaired_rupture"]
    hit = (cls == "unrepaired_rupture") & alert & (t >= r)
    first = pd.Series(t[hit] - r[hit], index=table["dyad"].to_numpy()[hit]).groupby(level=0).min()
    delays = first.reindex(un_dyads)  # NaN: never flagged
    v_dyads = truth.index[truth["true_class"].astype(str) == "v_shaped"]
    v_hit = (cls == "v_shaped") & alert & (t >= r) & (t < e)
    v_flagged = pd.Index(table["dyad"].to_numpy()[v_hit]).unique()
    out = {
        "unrepaired_n": len(un_dyads),
        "within2": float((delays <= 2).mean()) if len(un_dyads) else np.nan,
        "within3": float((delays <= 3).mean()) if len(un_dyads) else np.nan,
        "ever": float(delays.notna().mean()) if len(un_dyads) else np.nan,
        "median_delay": float(delays.median()) if delays.notna().any() else np.nan,
        "v_flagged_before_repair": float(np.isin(v_dyads, v_flagged).mean())
        if len(v_dyads) else np.nan,
    }
    # alert onsets that fall in a real drop (begun by t, not repaired by t)
    new = table["new_alert"].to_numpy(dtype=bool)
    in_drop = (t >= r) & ((cls == "unrepaired_rupture") | (t < e))
    out["alert_precision"] = float(in_drop[new].mean()) if new.any() else np.nan
    for name in ("linear", "u_shaped"):
        rows = cls == name
        n_sessions = int(rows.sum())
        new = int(table["new_alert"].to_numpy(dtype=bool)[rows].sum())
        key = "stable" if name == "linear" else "u_shaped"
        out[f"false_alarms_per100_{key}"] = 100.0 * new / n_sessions if n_sessions else np.nan
        out[f"alert_sessions_per100_{key}"] = 100.0 * alert[rows].sum() / max(n_sessions, 1)
    return out, delays


def calibration(p: np.ndarray, state: np.ndarray) -> pd.DataFrame:
    ok = np.isfinite(p)
    p, state = p[ok], state[ok]
    b = np.clip(np.digitize(p, BINS[1:-1]), 0, len(BINS) - 2)
    frame = pd.DataFrame({"bin": b, "p": p, "event": state.astype(float)})
    agg = frame.groupby("bin").agg(n=("p", "size"), mean_p=("p", "mean"),
                                   observed=("event", "mean"))
    agg["bin_low"], agg["bin_high"] = BINS[agg.index], BINS[agg.index + 1]
    return agg.reset_index(drop=True)


# ----------------------------------------------------------------------------------- timing
def time_updates(new: pd.DataFrame, priors, repeats: int) -> dict:
    dyad = new["dyad"].iloc[0]
    one = new.loc[new["dyad"] == dyad]
    monitor(one, priors, latest_only=True)  # warm (imports, compiled kernels)
    single = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        monitor(one, priors, latest_only=True)
        single.append(time.perf_counter() - t0)
    caseload = []
    for _ in range(max(3, repeats // 10)):
        t0 = time.perf_counter()
        monitor(new, priors, latest_only=True)
        caseload.append(time.perf_counter() - t0)
    full = []
    for _ in range(3):
        t0 = time.perf_counter()
        table = monitor(new, priors)
        full.append(time.perf_counter() - t0)
    return {"update_ms_median": 1e3 * float(np.median(single)),
            "update_sessions": len(one),
            "caseload_latest_ms_median": 1e3 * float(np.median(caseload)),
            "caseload_dyads": int(new["dyad"].nunique()),
            "all_sessions_ms_median": 1e3 * float(np.median(full)),
            "all_sessions_rows": len(table)}


# ------------------------------------------------------------------------------------- main
def run(n_ref: int, n_new: int, n_reps: int, source: str, seed: int, repeats: int) -> dict:
    draw = stream_source(source)
    rows, delay_rows, calib = [], [], []
    timing = None
    for rep in range(n_reps):
        ref_sessions, _ = draw(n_ref, seed + 1000 * rep)
        new_sessions, truth = draw(n_new, seed + 1000 * rep + 1)
        new_sessions = new_sessions.assign(dyad="n" + new_sessions["dyad"].astype(str))
        truth = truth.set_axis("n" + truth.index.astype(str))
        t0 = time.perf_counter()
        priors = fit_priors(ref_sessions)
        fit_s = time.perf_counter() - t0
        table = monitor(new_sessions, priors, threshold=0.5)
        p = table["p_unrepaired"].to_numpy(dtype=float)
        state = visible_state(table, truth)
        no_u = (truth["true_class"].astype(str) != "u_shaped").reindex(table["dyad"]).to_numpy()
        calib.append(calibration(p, state).assign(rep=rep, subset="all"))
        calib.append(calibration(p[no_u], state[no_u]).assign(rep=rep, subset="without_u_shaped"))
        brier = float(np.nanmean((p - state) ** 2))
        first_sd = float(new_sessions.loc[new_sessions["session"] == 1, "score"].std())
        cutoff = rci_cutoff(first_sd, 0.9)
        methods: dict[str, list[tuple[float, pd.DataFrame]]] = {"monitor": []}
        for thr in THRESHOLDS:
            alert = np.nan_to_num(p, nan=0.0) >= thr
            prev = pd.Series(alert).groupby(table["dyad"].to_numpy()).shift(fill_value=False)
            tab = table.loc[:, ["dyad", "session"]].assign(
                alert=alert, new_alert=alert & ~prev.to_numpy(dtype=bool))
            methods["monitor"].append((thr, tab))
        methods["sd2"] = [(np.nan, baseline_sd2(new_sessions))]
        methods["td_online"] = [(np.nan, baseline_td(new_sessions, cutoff))]
        methods["td_online_13"] = [(np.nan, baseline_td(new_sessions, cutoff, (1, 3)))]
        for method, variants in methods.items():
            for thr, tab in variants:
                figures, delays = evaluate(tab, truth)
                rows.append({"rep": rep, "method": method, "threshold": thr, **figures,
                             "brier": brier if method == "monitor" else np.nan,
                             "fit_priors_s": fit_s})
                counts = delays.fillna(-1).clip(upper=6).value_counts()
                for d, c in counts.items():
                    delay_rows.append({"rep": rep, "method": method, "threshold": thr,
                                       "delay": "never" if d < 0 else
                                       ("6+" if d >= 6 else str(int(d))), "dyads": int(c)})
        if timing is None:
            timing = time_updates(new_sessions, priors, repeats)
        print(f"replicate {rep + 1}/{n_reps} done", file=sys.stderr)
    return {"rows": pd.DataFrame(rows), "delays": pd.DataFrame(delay_rows),
            "calibration": pd.concat(calib, ignore_index=True), "timing": timing}


def _markdown(summary: pd.DataFrame, calib: pd.DataFrame, timing: dict, meta: dict) -> str:
    lines = [
        "# Session-by-session monitoring benchmark (issue 21)", "",
        f"Command: `{meta['command']}`", "",
        f"Source `{meta['source']}`; {meta['n_reps']} replicate(s) of a {meta['n_ref']}-dyad "
        f"reference cohort (priors) and a {meta['n_new']}-dyad new cohort streamed session by "
        f"session; medians over replicates. Load average {meta['loadavg']}.", "",
        "| method | threshold | unrepaired flagged <= 2 sessions | <= 3 | ever | median delay "
        "| repaired ruptures flagged before repair | false alarms /100 sessions (stable) "
        "| false alarms /100 (u_shaped) | alert sessions /100 (stable) | new alerts in a real drop |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for _, r in summary.iterrows():
        thr = "" if not np.isfinite(r["threshold"]) else f"{r['threshold']:.1f}"
        lines.append(
            f"| {r['method']} | {thr} | {r['within2']:.0%} | {r['within3']:.0%} | {r['ever']:.0%} "
            f"| {r['median_delay']:.0f} | {r['v_flagged_before_repair']:.0%} "
            f"| {r['false_alarms_per100_stable']:.2f} | {r['false_alarms_per100_u_shaped']:.2f} "
            f"| {r['alert_sessions_per100_stable']:.2f} | {r['alert_precision']:.0%} |")
    brier = summary.loc[summary["method"] == "monitor", "brier"].median()
    lines += ["", f"Brier score of `p_unrepaired` (all scored sessions): {brier:.4f}.", "",
              "Calibration (pooled over replicates; observed share: sessions in a visible, "
              "unrepaired drop; right: the same without the u_shaped dyads):", "",
              "| bin | sessions | mean p | observed share | sessions (no U) | mean p (no U) "
              "| observed share (no U) |", "|---|---|---|---|---|---|---|"]
    pooled = calib.assign(wp=calib["mean_p"] * calib["n"], wo=calib["observed"] * calib["n"])
    pooled = pooled.groupby(["subset", "bin_low", "bin_high"])[["n", "wp", "wo"]].sum()
    both = pd.merge(pooled.loc["all"], pooled.loc["without_u_shaped"], left_index=True,
                    right_index=True, suffixes=("", "_nou")).reset_index()
    for _, r in both.iterrows():
        lines.append(f"| {r['bin_low']:.1f}-{r['bin_high']:.1f} | {int(r['n'])} "
                     f"| {r['wp'] / r['n']:.3f} | {r['wo'] / r['n']:.3f} | {int(r['n_nou'])} "
                     f"| {r['wp_nou'] / r['n_nou']:.3f} | {r['wo_nou'] / r['n_nou']:.3f} |")
    lines += ["", "Timing (medians): one update (one dyad of "
              f"{timing['update_sessions']} sessions, latest only) {timing['update_ms_median']:.1f} "
              f"ms; weekly caseload run of {timing['caseload_dyads']} dyads "
              f"{timing['caseload_latest_ms_median']:.0f} ms; every session of every dyad "
              f"({timing['all_sessions_rows']} rows) {timing['all_sessions_ms_median']:.0f} ms.", ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1 replicate of 150 + 150 dyads")
    ap.add_argument("--n-ref", type=int, default=400)
    ap.add_argument("--n-new", type=int, default=400)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--source", default="simulate_cohort")
    ap.add_argument("--seed", type=int, default=21)
    ap.add_argument("--repeats", type=int, default=50, help="timing repeats")
    ap.add_argument("--prefix", default="monitor")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    if args.quick:
        args.n_ref, args.n_new, args.reps, args.repeats = 150, 150, 1, 10
    res = run(args.n_ref, args.n_new, args.reps, args.source, args.seed, args.repeats)
    rows = res["rows"]
    keys = ["method", "threshold"]
    summary = (rows.assign(threshold=rows["threshold"].fillna(-1.0))
               .groupby(keys, sort=False).median(numeric_only=True).reset_index())
    summary["threshold"] = summary["threshold"].where(summary["threshold"] >= 0)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"command": "python benchmarks/bench_monitor.py " + " ".join(sys.argv[1:]),
            "source": args.source, "n_ref": args.n_ref, "n_new": args.n_new,
            "n_reps": args.reps, "seed": args.seed, "alliancetraj": at.__version__,
            "loadavg": " ".join(f"{v:.1f}" for v in os.getloadavg())}
    rows.to_csv(out / f"{args.prefix}_benchmark.csv", index=False)
    res["delays"].to_csv(out / f"{args.prefix}_delays.csv", index=False)
    res["calibration"].to_csv(out / f"{args.prefix}_calibration.csv", index=False)
    (out / f"{args.prefix}_benchmark.json").write_text(json.dumps(
        {"meta": meta, "timing": res["timing"],
         "summary": json.loads(summary.to_json(orient="records"))}, indent=2) + "\n")
    md = _markdown(summary, res["calibration"], res["timing"], meta)
    (out / f"{args.prefix}_benchmark.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
