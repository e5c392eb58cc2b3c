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
# # Growth models and the within/between-person alliance–symptom model
#
# Mixed-effects growth models describe the average alliance trajectory and how
# dyads vary around it (random intercepts and slopes). The second half separates
# the alliance's *within-dyad* (state-like: this session's alliance above the
# dyad's own mean) from its *between-dyad* (trait-like: the dyad's mean) association
# with next session's symptoms (Falkenström et al. 2013; Zilcha-Mano et al. 2016).

# %%
import pandas as pd

import alliancetraj as at
from alliancetraj import plot as atplot

# %% [markdown]
# ## Linear and quadratic growth
# A cohort of steadily changing alliances, and one of U-shaped alliances.

# %%
linear = at.simulate_cohort(n_dyads=80, seed=3, class_mix={"linear": 1})
gm = at.GrowthModel(time="linear", random="slope", reml=True).fit(linear.sessions)
gm.fixed_effects

# %%
gm.random_effects_cov

# %%
print("simulated mean slope 0.02 per session; estimated",
      round(float(gm.fixed_effects.iloc[1]), 4))
print("residual SD", round(gm.residual_sd, 3), "log-likelihood", round(gm.loglik, 1))

# %%
u = at.simulate_cohort(n_dyads=80, seed=4, class_mix={"u_shaped": 1})
fits = {
    time: at.GrowthModel(time=time, random="intercept", reml=False).fit(u.sessions)
    for time in ("linear", "quadratic")
}
pd.DataFrame({time: {"loglik": m.loglik, "residual_sd": m.residual_sd}
              for time, m in fits.items()})

# %% [markdown]
# The quadratic model fits the U-shaped cohort much better (higher log-likelihood,
# smaller residual SD). Its mean curve against the dyads:

# %%
ax = atplot.plot_trajectories(u.sessions, u.truth)
fits["quadratic"].fixed_effects

# %% [markdown]
# ## Within- and between-dyad effects of the alliance on symptoms
# Paired series: alliance and symptoms rated every session. The model regresses
# symptoms on the previous session's alliance, split into the dyad's mean (between)
# and the deviation from it (within).

# %%
paired = at.simulate_alliance_symptoms(n_dyads=120, seed=5)
paired.sessions.head()

# %%
ws = at.alliance_symptom_model(paired.sessions, alliance="alliance", symptoms="symptoms")
ws.effects

# %%
print("simulated effects:", paired.effects)

# %%
ax = atplot.plot_effects(ws.effects, title="Within- and between-dyad alliance effects",
                         xlabel="symptom change per alliance point (95% interval)")
