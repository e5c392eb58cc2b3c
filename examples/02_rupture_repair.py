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
# # Rupture and repair: the exact engine and the PyMC model side by side
#
# A rupture is a sudden drop in the alliance; it is repaired when the alliance
# returns to its pre-rupture trend (`v_shaped`) and unrepaired when it stays down
# until the last session. Two engines estimate the class and the change points:
#
# - `method="exact"`: each class is a conjugate Bayesian regression; the rupture and
#   repair sessions are summed over exactly, so the probabilities involve no sampling;
# - `method="pymc"`: a hierarchical change-point mixture sampled with NUTS, which
#   shares information across dyads (and reports R-hat, ESS and divergences).
#
# Settings are small so that the notebook runs in CI; PyMC still needs about a
# minute to compile and sample.

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import alliancetraj as at
from alliancetraj import plot as atplot
from alliancetraj.models.exact import dyad_posterior

cohort = at.simulate_cohort(n_dyads=40, seed=7, n_sessions=(10, 14))
truth = cohort.truth

# %% [markdown]
# ## Exact engine

# %%
exact = at.classify(cohort.sessions, method="exact")
exact.summary()

# %% [markdown]
# The change points of every dyad come with credible sets (90% by default):

# %%
cols = ["rupture_session", "rupture_low", "rupture_high", "repair_session", "repair_low",
        "repair_high", "depth"]
exact.changepoints.loc[exact.labels == "v_shaped", cols].head()

# %% [markdown]
# For one dyad, the posterior over its rupture and repair sessions (under the
# `v_shaped` class) is available in full:

# %%
dyad = exact.probabilities["v_shaped"].idxmax()
one = cohort.sessions[cohort.sessions["dyad"] == dyad]
post = dyad_posterior(one, exact.hyperparameters, "v_shaped")
post["configurations"].sort_values("probability", ascending=False).head()

# %%
print("true rupture and repair:", truth.loc[dyad, ["rupture_session", "repair_session"]].tolist())
ax = atplot.plot_dyad(cohort.sessions, exact, dyad)

# %% [markdown]
# ## PyMC model
# Few draws to keep CI fast; use the defaults for real analyses and check the
# diagnostics (`res.diagnostics`).

# %%
pymc_res = at.classify(cohort.sessions, method="pymc", draws=200, tune=200, chains=2, seed=1)
pymc_res.diagnostics

# %% [markdown]
# ## Side by side

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True, layout="constrained")
atplot.plot_dyad(cohort.sessions, exact, dyad, ax=axes[0])
_ = atplot.plot_dyad(cohort.sessions, pymc_res, dyad, ax=axes[1])

# %% [markdown]
# Class probabilities of the two engines, dyad by dyad, and agreement with the truth:

# %%
fig, axes = plt.subplots(1, 4, figsize=(12, 3), layout="constrained")
for ax, cls in zip(axes, at.CLASSES, strict=True):
    ax.scatter(exact.probabilities[cls], pymc_res.probabilities[cls], s=12)
    ax.plot([0, 1], [0, 1], color="grey", linewidth=0.8)
    ax.set_title(cls, fontsize=9)
    ax.set_xlabel("exact")
axes[0].set_ylabel("pymc")

# %%
pd.DataFrame({
    name: {"accuracy": float(np.mean(r.labels.astype(str) == truth["true_class"].astype(str)))}
    for name, r in {"exact": exact, "pymc": pymc_res}.items()
})

# %% [markdown]
# Rupture sessions: estimate against truth for dyads both engines call ruptured.

# %%
ruptured = truth["rupture_session"].notna()
pd.DataFrame({
    "true": truth.loc[ruptured, "rupture_session"],
    "exact": exact.changepoints.loc[ruptured, "rupture_session"],
    "pymc": pymc_res.changepoints.loc[ruptured, "rupture_session"],
}).head(10)
