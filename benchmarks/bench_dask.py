"""Benchmark: the exact engine on Dask (LocalCluster) against the in-memory engine.

Writes a synthetic cohort (``n_dyads`` x 20 sessions) as a partitioned Parquet
dataset, one file per chunk of dyads (``simulate_cohort`` per chunk, ids
``c<k>_d<i>``), classifies it with ``alliancetraj.classify(DATA_DIR, out=...)`` on a
LocalCluster of ``--workers`` single-threaded worker processes, samples the
resident memory of every worker process, and (unless ``--no-in-memory``) runs the
in-memory engine on the same data. Figures go to
``benchmarks/results/dask_benchmark.{json,md}`` with the machine load (uptime).

    nice python benchmarks/bench_dask.py --n-dyads 100000 250000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

import alliancetraj as at
from alliancetraj.scale import local_cluster


def load() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def write_cohort(path: Path, n_dyads: int, chunk: int, seed: int) -> float:
    """Simulate in chunks; one Parquet file (one row group) per chunk, in dyad order."""
    t = time.perf_counter()
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    n_chunks = -(-n_dyads // chunk)
    width = len(str(n_chunks))
    for k in range(n_chunks):
        n = min(chunk, n_dyads - k * chunk)
        s = at.simulate_cohort(n, seed=seed + k, n_sessions=20, id_prefix=f"c{k:0{width}d}_")
        s.sessions.to_parquet(
            path / f"part-{k:0{width}d}.parquet", index=False, row_group_size=len(s.sessions)
        )
    return time.perf_counter() - t


class MemorySampler:
    """Peak resident memory of every descendant process (the Dask nannies and workers)."""

    def __init__(self, interval: float = 0.25) -> None:
        import psutil

        self._psutil = psutil
        self.interval = interval
        self.peak: dict[int, int] = {}
        self.names: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = self._psutil.Process()
        while not self._stop.is_set():
            for p in me.children(recursive=True):
                try:
                    rss = p.memory_info().rss
                    if rss > self.peak.get(p.pid, 0):
                        self.peak[p.pid] = rss
                        self.names[p.pid] = " ".join(p.cmdline()[-2:])[:80]
                except self._psutil.Error:
                    pass
            self._stop.wait(self.interval)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def run_dask(data: Path, out: Path, workers: int) -> dict:
    import dask
    import distributed

    with MemorySampler() as mem:
        t0 = time.perf_counter()
        cluster = local_cluster(workers, memory_limit="4GiB")
        client = distributed.Client(cluster)
        t1 = time.perf_counter()
        res = at.classify(str(data), out=out)
        t2 = time.perf_counter()
        client.close()
        cluster.close()
    peaks = sorted(mem.peak.values(), reverse=True)
    return {
        "seconds_classify": round(t2 - t1, 2),
        "seconds_cluster_start": round(t1 - t0, 2),
        "phases": res.diagnostics["dask"]["seconds"],
        "n_dyads": res.n_dyads,
        "n_partitions": res.diagnostics["dask"]["n_partitions"],
        "repartitioned_by_dyad": res.diagnostics["dask"]["repartitioned_by_dyad"],
        "em_iterations": res.diagnostics["dask"]["em_iterations"],
        "eb_iterations": res.hyperparameters["eb_iterations"],
        "peak_rss_worker_processes_gb": [round(v / 2**30, 3) for v in peaks[:workers]],
        "peak_rss_all_child_processes_gb": [round(v / 2**30, 3) for v in peaks],
        "dask_version": dask.__version__,
        "result": res,
    }


def run_in_memory(data: Path) -> dict:
    import psutil

    t0 = time.perf_counter()
    frame = pd.read_parquet(data)
    res = at.classify(frame, method="exact", progress=False)
    t1 = time.perf_counter()
    return {
        "seconds": round(t1 - t0, 2),
        "result": res,
        "rss_gb_after": round(psutil.Process().memory_info().rss / 2**30, 3),
    }


def write_report(rows, args, command) -> None:
    report = {
        "command": command,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "note": "shared 2-core machine; other engineers' jobs ran alongside "
            "(see load_before/load_after, 1/5/15-minute load averages)",
        },
        "settings": {
            "workers": args.workers,
            "threads_per_worker": 1,
            "memory_limit_per_worker": "4GiB",
            "dyads_per_file": args.chunk,
            "sessions_per_dyad": 20,
            "in_memory_engine_threads": 2,
        },
        "rows": rows,
    }
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{args.name}.json").write_text(json.dumps(report, indent=2, default=str))
    lines = [
        "# Exact engine on Dask (LocalCluster) vs in memory",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {os.cpu_count()} CPUs, shared (load averages 1/5/15 min shown); "
        f"{args.workers} worker processes x 1 thread, 4 GiB limit each.",
        "",
        "| dyads | rows | dask s | dask dyads/s | in-memory s | ratio (in-mem / dask) | "
        "peak worker RSS GB | max abs dP | label agreement | load before -> after |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['n_dyads']:,} | {r['n_rows']:,} | {r['dask_seconds_classify']} | "
            f"{r['dask_dyads_per_second']} | {r.get('in_memory_seconds', '-')} | "
            f"{r.get('speedup_dask_vs_in_memory', '-')} | "
            f"{max(r['dask_peak_rss_worker_processes_gb'])} | "
            f"{r.get('max_abs_probability_difference', float('nan')):.2g} | "
            f"{r.get('label_agreement', '-')} | {r['load_before']} -> {r['load_after']} |"
        )
    lines += [
        "",
        "Phases (s): " + "; ".join(f"{r['n_dyads']:,}: {r['dask_phases']}" for r in rows),
        "",
    ]
    (out_dir / f"{args.name}.md").write_text("\n".join(lines))
    print(f"wrote {out_dir / args.name}.json and .md ({command})", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-dyads", type=int, nargs="+", default=[1_000_000])
    ap.add_argument("--chunk", type=int, default=10_000, help="dyads per Parquet file")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=20240)
    ap.add_argument("--data-dir", default="/tmp/alliancetraj-bench-dask")
    ap.add_argument(
        "--no-in-memory", action="store_true", help="skip the in-memory engine (ratio not reported)"
    )
    ap.add_argument(
        "--in-memory-max",
        type=int,
        default=250_000,
        help="run the in-memory engine only up to this many dyads",
    )
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    ap.add_argument("--name", default="dask_benchmark", help="file name of the figures")
    args = ap.parse_args(argv)
    command = "nice python benchmarks/bench_dask.py " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )

    rows = []
    for n in args.n_dyads:
        data = Path(args.data_dir) / f"cohort_{n}"
        out = Path(args.data_dir) / f"result_{n}"
        load_before = load()
        t_write = write_cohort(data, n, args.chunk, args.seed)
        print(f"[{n}] wrote {n} dyads in {t_write:.1f} s to {data}", flush=True)
        d = run_dask(data, out, args.workers)
        print(
            f"[{n}] dask: {d['seconds_classify']} s, phases {d['phases']}, "
            f"peak worker RSS {d['peak_rss_worker_processes_gb']} GB",
            flush=True,
        )
        row = {
            "n_dyads": n,
            "n_rows": n * 20,
            "seconds_write_parquet": round(t_write, 1),
            "load_before": load_before,
        }
        row.update({f"dask_{k}": v for k, v in d.items() if k != "result"})
        row["dask_dyads_per_second"] = round(n / d["seconds_classify"], 1)
        if not args.no_in_memory and n <= args.in_memory_max:
            m = run_in_memory(data)
            dres = d["result"].compute()
            mres = m["result"]
            diff = np.abs(
                dres.probabilities.to_numpy() - mres.probabilities.reindex(dres.dyads).to_numpy()
            )
            row.update(
                {
                    "in_memory_seconds": m["seconds"],
                    "in_memory_dyads_per_second": round(n / m["seconds"], 1),
                    "in_memory_rss_gb_after": m["rss_gb_after"],
                    "speedup_dask_vs_in_memory": round(m["seconds"] / d["seconds_classify"], 3),
                    "max_abs_probability_difference": float(diff.max()),
                    "mean_abs_probability_difference": float(diff.mean()),
                    "label_agreement": float(
                        (dres.labels == mres.labels.reindex(dres.dyads)).mean()
                    ),
                }
            )
            print(
                f"[{n}] in-memory: {m['seconds']} s; ratio {row['speedup_dask_vs_in_memory']}",
                flush=True,
            )
        row["load_after"] = load()
        rows.append(row)
        write_report(rows, args, command)
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(data, ignore_errors=True)

    return 0


if __name__ == "__main__":
    sys.exit(main())
