"""alliancetraj: longitudinal therapeutic-alliance trajectories.

Fit session-by-session alliance ratings with exact Bayesian change-point models,
hierarchical PyMC mixtures and mixed-effects growth models; classify every dyad's
trajectory as ``linear``, ``u_shaped``, ``v_shaped`` or ``unrepaired_rupture``
with honest uncertainty; relate the patterns to recovery.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .classify import classify
from .errors import DataError
from .io import load_sessions, wide_to_long
from .results import CLASSES, ClassificationResult
from .simulate import Cohort, simulate_cohort

__all__ = [
    "CLASSES",
    "ClassificationResult",
    "Cohort",
    "DataError",
    "__version__",
    "classify",
    "load_sessions",
    "simulate_cohort",
    "wide_to_long",
]
