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
# # Outcomes and mediation
#
# Two questions, in the spirit of Moran et al. (2014):
#
# 1. Do the alliance trajectory classes predict recovery? (`relate_outcomes`)
# 2. Does the alliance carry part of the effect of what providers do on clients'
#    recovery? (`mediation`: exposure -> alliance -> recovery)

# %%
import matplotlib.pyplot as plt
import pandas as pd

import alliancetraj as at
from alliancetraj import plot as atplot

# %% [markdown]
# ## Trajectory classes and recovery

# %%
cohort = at.simulate_cohort(n_dyads=300, seed=11)
res = at.classify(cohort.sessions, method="exact")
res.summary()

# %% [markdown]
# Classes are estimated, not observed. The default estimator (BCH, bias-adjusted
# three-step) corrects for classification error; regressing on the most probable
# class (`method="modal"`) ignores it and shrinks the effects toward zero.

# %%
fits = {
    method: at.relate_outcomes(res, cohort.outcomes, outcome="recovery",
                               covariates=["baseline_severity"], method=method)
    for method in ("bch", "modal")
}
from alliancetraj.simulate import DEFAULT_OUTCOME_EFFECTS

pd.DataFrame({
    "simulated": pd.Series(DEFAULT_OUTCOME_EFFECTS).drop("linear"),
    **{m: f.effects["estimate"] for m, f in fits.items()},
})

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 2.8), sharex=True, layout="constrained")
for ax, (method, fit) in zip(axes, fits.items(), strict=True):
    atplot.plot_effects(fit, ax=ax, annotate=False, title=method)

# %% [markdown]
# A binary outcome (reliable improvement) on the log-odds scale:

# %%
binary = at.relate_outcomes(res, cohort.outcomes, outcome="reliable_improvement",
                            covariates=["baseline_severity"], family="binomial")
print(binary.summary())
ax = atplot.plot_effects(binary)

# %% [markdown]
# ## Mediation through the alliance
# Simulated data modelled on Moran et al. (2014): providers' recovery-promoting
# strategies (standardised) raise the alliance, which raises personal recovery.
# The mediator is each dyad's mean alliance over its sessions.

# %%
md = at.simulate_mediation(n_dyads=72, seed=12)
md.data.head()

# %%
med = at.mediation(md.data, exposure="strategies", outcome="recovery", mediator="mean",
                   sessions=md.sessions, n_rep=300, seed=1)
print(med.summary())

# %%
pd.DataFrame({"simulated": pd.Series(md.truth)[["indirect", "direct", "total"]],
              "estimate": med.effects.loc[["indirect", "direct", "total"], "estimate"]})

# %%
ax = atplot.plot_effects(med.effects.loc[["indirect", "direct", "total"]],
                         xlabel="effect of one SD of strategies on recovery")
