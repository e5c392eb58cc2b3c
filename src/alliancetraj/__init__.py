"""alliancetraj: longitudinal therapeutic-alliance trajectories.

Fit session-by-session alliance ratings with exact Bayesian change-point models,
hierarchical PyMC mixtures and mixed-effects growth models; classify every dyad's
trajectory as ``linear``, ``u_shaped``, ``v_shaped`` or ``unrepaired_rupture``
with honest uncertainty; relate the patterns to recovery.
"""

from __future__ import annotations

# ``alliancetraj.classify`` is the function: the compatibility module of that name is
# loaded first (loading a submodule sets the package attribute), then rebound below.
from . import classify as _classify_module  # noqa: F401
from . import datasets, instruments
from ._version import __version__
from .dispatch import classify
from .errors import DataError
from .io import load_sessions, wide_to_long
from .mediation import mediation
from .models.alliance_symptom import alliance_symptom_model
from .models.growth import GrowthModel
from .monitor import monitor
from .outcomes import relate_outcomes
from .results import CLASSES, ClassificationResult
from .simulate import Cohort, simulate_alliance_symptoms, simulate_cohort, simulate_mediation
from .sudden import sudden_changes

__all__ = [
    "CLASSES",
    "ClassificationResult",
    "Cohort",
    "DataError",
    "GrowthModel",
    "__version__",
    "alliance_symptom_model",
    "classify",
    "datasets",
    "instruments",
    "load_sessions",
    "mediation",
    "monitor",
    "relate_outcomes",
    "simulate_alliance_symptoms",
    "simulate_cohort",
    "simulate_mediation",
    "sudden_changes",
    "wide_to_long",
]
