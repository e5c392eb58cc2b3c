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
# # Quickstart: simulate, classify, plot, relate to outcomes
#
# `alliancetraj` classifies each client–provider dyad's session-by-session alliance
# as `linear`, `u_shaped`, `v_shaped` (rupture then repair) or `unrepaired_rupture`,
# with probabilities, and relates the classes to recovery.
#
# This notebook runs on a small simulated cohort so that it finishes in seconds;
# raise `N_DYADS` for a realistic analysis (the exact engine handles thousands).

# %%
import tempfile
from pathlib import Path

import pandas as pd

import alliancetraj as at
from alliancetraj import plot as atplot

N_DYADS = 150
SEED = 1

# %% [markdown]
# ## Data
# Long format: one row per rated session. With your own data use
# `at.load_sessions("ratings.csv", dyad="client", session="week", score="wai")`.

# %%
cohort = at.simulate_cohort(n_dyads=N_DYADS, seed=SEED)
cohort.sessions.head()

# %%
cohort.outcomes.head()

# %% [markdown]
# ## Classify
# The default method, `"exact"`, computes exact posterior class probabilities from
# closed-form Bayesian change-point models (no sampling).

# %%
res = at.classify(cohort.sessions, method="exact")
res

# %%
res.summary()

# %%
res.to_frame().head()

# %% [markdown]
# ## Plots
# Every plot function takes `ax=` and returns the Axes.

# %%
ax = atplot.plot_probabilities(res)

# %%
axes = atplot.plot_trajectories(cohort.sessions, res, facet=True)

# %% [markdown]
# One dyad: its scores, the fitted trajectory of its most probable class with a 90%
# band, and the posterior over the rupture and repair sessions (bars, right axis).

# %%
dyad = res.probabilities["v_shaped"].idxmax()
ax = atplot.plot_dyad(cohort.sessions, res, dyad)

# %% [markdown]
# The data are simulated, so we can compare with the truth.

# %%
pd.crosstab(cohort.truth["true_class"], res.labels, rownames=["true"], colnames=["estimated"])

# %% [markdown]
# ## Relate classes to recovery
# Class effects relative to `linear`, adjusted for baseline severity. The default
# estimator (BCH) corrects for classification error.

# %%
fit = at.relate_outcomes(res, cohort.outcomes, outcome="recovery",
                         covariates=["baseline_severity"])
print(fit.summary())

# %%
ax = atplot.plot_effects(fit)

# %% [markdown]
# ## A report in one HTML file
# The same figures and tables, self-contained (this is what `alliancetraj demo` writes).

# %%
from alliancetraj.report import write_report

out = Path(tempfile.mkdtemp(prefix="alliancetraj-quickstart-"))
path = write_report(out / "report.html", res, cohort.sessions, effects=fit, truth=cohort.truth,
                    meta={"simulated dyads": N_DYADS, "seed": SEED})
print(f"wrote {path} ({path.stat().st_size / 1e3:.0f} kB)")
