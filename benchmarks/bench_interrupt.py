"""Interrupted writes and the cost of writing atomically.

1. **Interruptions.** ``alliancetraj simulate --out cohort.{csv,parquet}`` writes a
   large cohort over a previous output at the same path; the run is interrupted
   with SIGINT or SIGTERM at a random moment while the sessions file is being
   written (the temporary sibling exists). Each trial records the exit status,
   whether stderr holds a traceback, what the target path then holds (the
   previous output, the complete new one, or anything else = lost), and whether a
   temporary file was left behind.
2. **Overhead.** Writing a classification-sized table (one row per dyad, the
   columns of ``ClassificationResult.to_frame()``) directly with pandas versus
   through :func:`alliancetraj._files.write_atomic` (temporary sibling, fsync,
   rename): medians of ``--repeats`` writes.

Writes ``benchmarks/results/interrupt_benchmark.{json,md}`` and prints the command.

Run:  nice python benchmarks/bench_interrupt.py [--n-dyads 100000] [--trials 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

import alliancetraj as at
from alliancetraj._files import write_atomic

RESULTS = Path(__file__).resolve().parent / "results"
ENV = {**os.environ, "PYTHONPATH": str(Path(at.__file__).resolve().parents[1])}


def _default_sigint() -> None:
    """In the child: Ctrl-C's default action, even when this process runs in the
    background (where SIGINT is ignored, and the ignoring would be inherited)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".~"))


def _read(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)


def interrupt_trial(folder: Path, fmt: str, sig: int, n_dyads: int, n_rows_new: int,
                    rng: random.Random) -> dict:
    out = folder / f"cohort.{fmt}"
    previous = pd.DataFrame({"dyad": ["old"] * 3, "session": [1, 2, 3], "score": [3.0, 2, 4]})
    previous.to_parquet(out) if fmt == "parquet" else previous.to_csv(out, index=False)
    proc = subprocess.Popen(
        [sys.executable, "-m", "alliancetraj.cli", "simulate", "--out", str(out),
         "--n-dyads", str(n_dyads), "--seed", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=folder, env=ENV,
        preexec_fn=_default_sigint,
    )
    while (not any(n.endswith(out.name) for n in _leftovers(folder))
           and proc.poll() is None):
        time.sleep(0.001)
    time.sleep(rng.uniform(0.0, 0.5))          # somewhere inside the write
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=300)
    try:
        table = _read(out)
        state = ("previous" if table.equals(previous)
                 else "complete new" if len(table) == n_rows_new else "LOST")
    except Exception as exc:  # an unreadable file is a lost output
        state = f"LOST ({type(exc).__name__})"
    left = _leftovers(folder)
    for name in left:
        (folder / name).unlink()
    for extra in folder.glob("cohort_*.csv"):
        extra.unlink()
    return {"format": fmt, "signal": signal.Signals(sig).name, "status": proc.returncode,
            "traceback": "Traceback" in err, "target": state, "temporary_left": len(left),
            "stderr": err.strip().splitlines()[-1] if err.strip() else ""}


def overhead(n_rows: int, repeats: int, folder: Path) -> list[dict]:
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(4), size=n_rows)
    table = pd.DataFrame(probs, columns=[f"p_{c}" for c in at.CLASSES],
                         index=pd.Index([f"d{i:07d}" for i in range(n_rows)], name="dyad"))
    table.insert(0, "label", np.array(at.CLASSES)[probs.argmax(axis=1)])
    for col in ("rupture_session", "repair_session", "depth", "depth_low", "depth_high"):
        table[col] = rng.normal(size=n_rows)
    rows = []
    for fmt, direct in (("csv", lambda p: table.to_csv(p)),
                        ("parquet", lambda p: table.to_parquet(p))):
        path = folder / f"table.{fmt}"
        for how, write in (("direct", direct), ("atomic", lambda p, w=direct: write_atomic(p, w))):
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                write(path)
                times.append(time.perf_counter() - t0)
            rows.append({"format": fmt, "how": how, "rows": n_rows,
                         "median_s": float(np.median(times)), "times_s": times})
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-dyads", type=int, default=100_000,
                        help="dyads simulated per interrupted run (default: 100000)")
    parser.add_argument("--trials", type=int, default=5,
                        help="interrupted runs per format and signal (default: 5)")
    parser.add_argument("--rows", type=int, default=200_000,
                        help="rows of the table timed for the overhead (default: 200000)")
    parser.add_argument("--repeats", type=int, default=5, help="writes per timing (default: 5)")
    args = parser.parse_args(argv)
    command = "nice python benchmarks/bench_interrupt.py " + shlex.join(sys.argv[1:] if argv
                                                                       is None else argv)
    rng = random.Random(0)
    n_rows_new = len(at.simulate_cohort(args.n_dyads, seed=1).sessions)
    trials = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for fmt in ("csv", "parquet"):
            for sig in (signal.SIGINT, signal.SIGTERM):
                for _ in range(args.trials):
                    trials.append(interrupt_trial(folder, fmt, sig, args.n_dyads, n_rows_new,
                                                  rng))
                    print(trials[-1])
        timing = overhead(args.rows, args.repeats, folder)
    lost = sum(t["target"].startswith("LOST") for t in trials)
    tracebacks = sum(t["traceback"] for t in trials)
    left = sum(t["temporary_left"] > 0 for t in trials)
    meta = {"command": command, "python": platform.python_version(),
            "load_average": os.getloadavg(), "n_dyads": args.n_dyads,
            "rows_written": n_rows_new}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "interrupt_benchmark.json").write_text(
        json.dumps({"meta": meta, "trials": trials, "overhead": timing}, indent=2))
    lines = [
        "# Interrupted writes and atomic-write overhead", "",
        f"`{command}` (load average {', '.join(f'{x:.1f}' for x in meta['load_average'])})", "",
        f"**Interruptions**: {len(trials)} runs of `alliancetraj simulate` ({args.n_dyads:,} "
        f"dyads, {n_rows_new:,} session rows) interrupted while writing over a previous "
        f"output: {lost} lost outputs, {tracebacks} tracebacks, {left} temporary files left.",
        "", "| format | signal | exit status | target after | traceback |",
        "| --- | --- | --- | --- | --- |",
    ]
    for t in trials:
        lines.append(f"| {t['format']} | {t['signal']} | {t['status']} | {t['target']} | "
                     f"{'yes' if t['traceback'] else 'no'} |")
    lines += ["", f"**Overhead** (a {args.rows:,}-row classification table, median of "
                  f"{args.repeats} writes):", "", "| format | direct (s) | atomic (s) |",
              "| --- | --- | --- |"]
    for fmt in ("csv", "parquet"):
        d = next(r for r in timing if r["format"] == fmt and r["how"] == "direct")
        a = next(r for r in timing if r["format"] == fmt and r["how"] == "atomic")
        lines.append(f"| {fmt} | {d['median_s']:.3f} | {a['median_s']:.3f} |")
    (RESULTS / "interrupt_benchmark.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
