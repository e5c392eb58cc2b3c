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
# # Session-by-session monitoring: flag a rupture while it can still be repaired
#
# Services that collect an alliance rating after every session can ask, after
# tonight's session: how probable is it that this dyad is in a rupture that has
# not been repaired, and is that new? `at.monitor` answers with the exact
# change-point model, using only the sessions seen so far:
#
# 1. fit the priors once on a reference cohort of *finished* treatments and save
#    them to a file;
# 2. score the current caseload with those fixed priors, one session at a time
#    (or all dyads' latest sessions in a weekly run);
# 3. read the alerts: `alert` while the probability is at or above the threshold,
#    `new_alert` on its first session.

# %%
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

import alliancetraj as at
from alliancetraj.monitor import fit_priors, load_priors, save_priors
from alliancetraj.plot.monitor import plot_caseload, plot_monitor_dyad

# %% [markdown]
# ## 1. Priors from a past cohort

# %%
past = at.simulate_cohort(n_dyads=200, seed=1)
priors = fit_priors(past.sessions)
folder = Path(tempfile.mkdtemp())
path = save_priors(priors, folder / "priors.json")
priors = load_priors(path)
pd.Series(priors.hyperparameters.to_dict())

# %% [markdown]
# ## 2. Stream a new cohort, session by session
#
# A service sees one new session per dyad per week. Here we replay a new cohort:
# at week `w` the data are every dyad's sessions up to `w`, and the weekly run
# scores each dyad's latest session (`latest_only=True`).

# %%
new = at.simulate_cohort(n_dyads=12, seed=5, id_prefix="c", n_sessions=(10, 14))
weekly = []
for week in range(1, 15):
    seen = new.sessions[new.sessions["session"] <= week]
    run = at.monitor(seen, priors, latest_only=True)
    weekly.append(run[run["session"] == week])  # dyads rated this week
weekly = pd.concat(weekly, ignore_index=True)
weekly.loc[weekly["new_alert"], ["dyad", "session", "p_unrepaired", "onset_mode",
                                 "onset_low", "onset_high", "depth"]]

# %% [markdown]
# The weekly runs give exactly what scoring every session of the finished data at
# once gives (a later session never changes an earlier row):

# %%
full = at.monitor(new.sessions, priors)
check = full.merge(weekly, on=["dyad", "session"], suffixes=("", "_weekly"))
float((check["p_unrepaired"] - check["p_unrepaired_weekly"]).abs().max())

# %% [markdown]
# Alerts against the truth the simulator planted (the first session of the drop):

# %%
first_alert = full[full["alert"]].groupby("dyad")["session"].min().rename("first_alert")
new.truth[["true_class", "rupture_session", "repair_session"]].join(first_alert)

# %% [markdown]
# ## 3. Figures
#
# One dyad: its scores, and under them the probability of an unrepaired rupture
# after each session, with the threshold and the onset's credible set.

# %%
ruptured = new.truth.index[new.truth["true_class"] == "unrepaired_rupture"]
dyad = ruptured[0] if len(ruptured) else new.truth.index[0]
ax = plot_monitor_dyad(full, dyad)

# %% [markdown]
# The caseload at the last week: each dyad's latest probability, alerts marked.

# %%
fig, ax = plt.subplots(figsize=(6.4, 4), layout="constrained")
_ = plot_caseload(full, ax=ax)

# %% [markdown]
# The same weekly run from the command line:
#
# ```
# alliancetraj monitor past.csv --fit-priors --priors priors.json
# alliancetraj monitor caseload.csv --priors priors.json --out alerts.csv
# ```
#
# `benchmarks/bench_monitor.py` measures detection delay, false alarms and
# calibration on simulated streams (see the README).
