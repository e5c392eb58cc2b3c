"""Where the exact engine's time goes, end to end (issue 20): a phase-by-phase breakdown.

Writes ``benchmarks/results/exact_profile.{md,json}``.

    nice python benchmarks/profile_exact.py                 # 100,000 dyads x 20 sessions, EB
    nice python benchmarks/profile_exact.py --dyads 20000 --repeats 1

Every repeat runs in a fresh subprocess, which times, in this order: the imports the
engine adds to ``import alliancetraj`` (the driver, then the compiled kernels); one
cold ``classify()`` (the first call: numba loads its cached kernels from disk);
the engine's phases one by one, warm (the driver's steps of
:func:`alliancetraj.models.exact.run_in_memory`, called in the same order with the
same arguments, BLAS held to one thread as the engine does); and a warm
``classify()``. Wall and CPU seconds (all threads) per phase; medians over repeats.
The machine is shared: the load average is recorded at each repeat.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
OUT = HERE / "results"

CHILD = r"""
import json, math, sys, time
T = {}
def timed(name, fn):
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    T[name] = (time.perf_counter() - w, time.process_time() - c)
    return out

import numpy as np
import pandas as pd
import alliancetraj as at
n = int(sys.argv[1])
cohort = at.simulate_cohort(n, seed=11, n_sessions=20)
frame0 = at.load_sessions(cohort.sessions)

import importlib
timed("import: models.exact", lambda: importlib.import_module("alliancetraj.models.exact"))
timed("import: compiled kernels (numba)",
      lambda: importlib.import_module("alliancetraj.models.changepoint.kernels"))
timed("classify(), cold (first call)", lambda: at.classify(frame0, progress=False))

from threadpoolctl import threadpool_limits
from alliancetraj.io import load_sessions
from alliancetraj.models import exact as ex
from alliancetraj.models import exact_phases as ph
from alliancetraj.models.changepoint.spec import standardisation

def phases():
    frame = timed("validation (load_sessions in classify)",
                  lambda: load_sessions(frame0, min_sessions=4))
    options = ph.ExactOptions.from_options()
    executor = ph.ThreadExecutor(options.n_jobs)
    settings = options.settings
    loc, sd = timed("standardisation", lambda: standardisation(frame))
    starts = timed("dyad boundaries", lambda: ex.dyad_starts(frame))
    n_dyads = len(starts)
    sub_stats = timed("EB: subsample statistics",
                      lambda: ex.subsample_stats(frame, starts, loc, sd, options))
    h_std, eb_info = timed("EB: L-BFGS fit", lambda: ph.fit_priors(
        executor, [sub_stats], n_sub=sum(len(s.n) for s in sub_stats), options=options))
    chunks = timed("panel blocks", lambda: list(ex.panel_chunks(frame, options.chunk_size,
                                                                 starts=starts)))
    logcdf = ex.LogTCdf()
    Ls = timed("pass 1: class evidences", lambda: executor.map(
        lambda item: ex.block_class_evidence(item[1], h_std, loc, sd, settings, logcdf),
        chunks))
    h_std, _ = timed("EM: class shares", lambda: ph.fit_class_proportions(
        executor, Ls, n_dyads=n_dyads, h_std=h_std))
    parts = timed("pass 2: posteriors and change points", lambda: executor.map(
        lambda item: ex.block_summary(item[0][0], item[0][1], h_std, loc, sd, settings,
                                      options.credible_level, logcdf, L=item[1]),
        list(zip(chunks, Ls))))
    timed("result assembly", lambda: ex.assemble_result(
        parts, h_std, loc, sd, settings, credible_level=options.credible_level,
        eb_info=eb_info, given=False, fit_class_probs=True, eb_max_dyads=options.eb_max_dyads,
        t_cdf_used="table"))
    return eb_info

with threadpool_limits(limits=1, user_api="blas"):
    eb_info = timed("phases, warm (sum)", phases)
timed("classify(), warm", lambda: at.classify(frame0, progress=False))
print(json.dumps({"phases": T, "eb_evaluations": eb_info["eb_evaluations"]}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dyads", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    runs, loads = [], []
    for _ in range(args.repeats):
        loads.append(os.getloadavg()[0])
        proc = subprocess.run([sys.executable, "-c", CHILD, str(args.dyads)],
                              capture_output=True, text=True, check=True)
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(runs[-1], flush=True)
    names = list(runs[0]["phases"])
    med = {k: (float(np.median([r["phases"][k][0] for r in runs])),
               float(np.median([r["phases"][k][1] for r in runs]))) for k in names}
    command = "nice python benchmarks/profile_exact.py" + (
        f" --dyads {args.dyads}" if args.dyads != 100_000 else "") + (
        f" --repeats {args.repeats}" if args.repeats != 3 else "")
    result = {"command": command, "n_dyads": args.dyads, "n_sessions": 20,
              "repeats": args.repeats, "load_avg_1min": loads, "cpu_count": os.cpu_count(),
              "median_seconds_wall_cpu": med, "runs": runs}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "exact_profile.json").write_text(json.dumps(result, indent=2))
    warm = med["phases, warm (sum)"][0]
    lines = [
        "# Exact engine: where the time goes (empirical Bayes)\n",
        f"Command: `{command}` ({args.dyads:,} dyads x 20 sessions; {os.cpu_count()} CPUs; "
        f"load average at the repeats: {', '.join(f'{x:.1f}' for x in loads)}). "
        f"Median of {args.repeats} fresh processes; CPU = all threads.\n",
        "| step | wall (s) | CPU (s) | share of warm phases |",
        "| --- | ---: | ---: | ---: |",
    ]
    for k in names:
        wall, cpu = med[k]
        share = f"{100 * wall / warm:.0f}%" if not k.startswith(("import", "classify",
                                                                 "phases")) else ""
        lines.append(f"| {k} | {wall:.3f} | {cpu:.3f} | {share} |")
    lines.append(f"\nEmpirical-Bayes objective evaluations: {runs[0]['eb_evaluations']}.")
    (OUT / "exact_profile.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"\nwrote {OUT / 'exact_profile.md'} and .json")


if __name__ == "__main__":
    main()
