# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Benchmarking classification methods on simulated cohorts
#
# Every method returns the same result type, so they can be scored the same way
# against the simulated truth: accuracy, calibration of the probabilities
# (reliability diagram), change-point location and runtime.
# The full benchmark is `alliancetraj benchmark --out benchmarks/results`; here a
# tiny grid runs in CI.

# %%
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt

import alliancetraj as at
from alliancetraj import metrics
from alliancetraj import plot as atplot
from alliancetraj.bench import QUICK_GRID, available_methods, run_benchmark

available_methods()

# %% [markdown]
# ## Scoring one result by hand

# %%
cohort = at.simulate_cohort(n_dyads=200, seed=21)
res = at.classify(cohort.sessions, method="exact")
truth = cohort.truth["true_class"]
print("accuracy", round(metrics.accuracy(truth, res.labels), 3),
      "macro F1", round(metrics.macro_f1(truth, res.labels), 3),
      "Brier", round(metrics.brier_score(truth, res.probabilities), 3))

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
atplot.plot_confusion_matrix(metrics.confusion_matrix(truth, res.labels), ax=axes[0],
                             title="exact")
_ = atplot.plot_reliability(metrics.reliability_table(truth, res.probabilities), ax=axes[1],
                            label="exact")

# %% [markdown]
# ## The harness
# `run_benchmark` simulates cohorts over a grid of conditions, runs every available
# method, scores it and writes CSV, Markdown and figures. A very small grid here.

# %%
out = Path(tempfile.mkdtemp(prefix="alliancetraj-bench-"))
grid = QUICK_GRID.replace(n_dyads=60, n_seeds=1, scan_sizes=(50, 100))
bench = run_benchmark(out, quick=True, methods=["exact", "rules"], seed=0, grid=grid,
                      figures=False, echo=print)
bench.results.groupby("method")[["accuracy", "macro_f1"]].median()

# %%
ax = atplot.plot_runtime(bench.runtime)

# %%
print(bench.summary[:1500])
