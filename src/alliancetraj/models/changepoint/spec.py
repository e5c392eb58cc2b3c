r"""The change-point model, stated once: classes, configurations, designs, hyperparameters.

Every back end (the exact engine, the PyMC cohort mixture, the explicit per-dyad
PyMC models, the plots and the prior-predictive samplers) reads the model from
here. The mathematics is in :mod:`alliancetraj.models.changepoint` (package
docstring).

What is declared here
---------------------
``CLASSES``
    The four classes, in the package order.
``CONSTRAINED``
    Per class: the names of its coefficients (``level``, ``slope``, ``depth``,
    ``amplitude``) and which one is constrained positive (``None`` for linear).
:class:`Settings`
    The shape of the configuration space (longest repaired rupture, the U's margin,
    sessions required before a rupture and in an unrepaired drop).
:func:`admissible`
    A dyad's admissible configurations, enumerated from its observed sessions.
:func:`design_on` / :func:`design` / :func:`extra_column`
    The design matrix of one configuration (at the sessions, or on a plotting grid).
:class:`Hyperparameters`
    The prior hyperparameters with their names (:data:`NAMES`), the optimiser's
    transforms and bounds (:data:`TRANSFORMS`, :data:`BOUNDS`), the kernel's order
    (:data:`KERNEL_THETA`), and standardisation.
:func:`standardisation`
    The cohort location and scale by which scores are standardised internally.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np
import pandas as pd

from ...results import CLASSES

__all__ = [
    "BOUNDS",
    "CLASSES",
    "COEFFICIENTS",
    "KERNEL_THETA",
    "MIN_EFFECT",
    "MIN_SESSIONS",
    "NAMES",
    "TRANSFORMS",
    "Hyperparameters",
    "Settings",
    "admissible",
    "as_hyperparameters",
    "design",
    "design_on",
    "extra_column",
    "from_theta",
    "guard_sd",
    "prior_moments",
    "standardisation",
    "standardise_mapping",
    "to_theta",
    "unstandardise_mapping",
]

#: Shortest series the model accepts (two sessions before a rupture, one in it and one after).
MIN_SESSIONS = 4
K = len(CLASSES)
LIN, U, V, UN = range(K)

#: Coefficients of each class's design, in column order; the last of a constrained class
#: is kept positive (amplitude or depth).
COEFFICIENTS: dict[str, tuple[str, ...]] = {
    "linear": ("level", "slope"),
    "u_shaped": ("level", "amplitude"),
    "v_shaped": ("level", "slope", "depth"),
    "unrepaired_rupture": ("level", "slope", "depth"),
}
#: The class whose constrained coefficient is positive (all but ``linear``).
CONSTRAINED = {c: COEFFICIENTS[c][-1] if c != "linear" else None for c in CLASSES}


# ================================================================== configuration space
@dataclass(frozen=True)
class Settings:
    """The configuration space: what a rupture, a repair and a U's minimum may be."""

    max_rupture_length: int = 4
    u_margin: float = 1.0
    min_pre: int = 2
    min_drop: int = 2


def admissible(t: np.ndarray, settings: Settings | None = None) -> dict[str, list]:
    """Admissible configurations of one dyad with sorted observed sessions ``t``.

    ``linear``: ``[None]``; ``u_shaped``: the minimum's session on the half-session
    grid ``t_1 + u_margin, ..., t_n - u_margin``; ``v_shaped``: ``(rupture, repair)``
    observed sessions with ``min_pre`` sessions before the rupture and
    ``repair - rupture <= max_rupture_length``; ``unrepaired_rupture``: the rupture
    session, ``min_pre`` sessions before and ``min_drop`` from it on.
    """
    settings = Settings() if settings is None else settings
    t = np.asarray(t, dtype=float)
    n = len(t)
    out: dict[str, list] = {"linear": [None], "u_shaped": [], "v_shaped": [],
                            "unrepaired_rupture": []}
    if n >= 1:
        lo, hi = t[0] + settings.u_margin, t[-1] - settings.u_margin
        w = lo
        while w <= hi + 1e-9:
            out["u_shaped"].append(float(w))
            w += 0.5
    for i in range(settings.min_pre, n):           # i: 0-based index of the rupture session
        for j in range(i + 1, n):
            if t[j] - t[i] <= settings.max_rupture_length:
                out["v_shaped"].append((float(t[i]), float(t[j])))
        if n - i >= settings.min_drop:
            out["unrepaired_rupture"].append(float(t[i]))
    return out


def extra_column(grid: np.ndarray, t: np.ndarray, cls: str, config) -> np.ndarray:
    """The configuration-dependent design column at ``grid``: the U basis
    ``((s - w) / h)^2`` (``h`` from the dyad's first and last sessions ``t``) or minus the
    drop indicator (``r <= s < e`` repaired, ``s >= r`` unrepaired)."""
    grid = np.asarray(grid, dtype=float)
    if cls == "u_shaped":
        h = max(config - t[0], t[-1] - config)
        return ((grid - config) / h) ** 2
    if cls == "v_shaped":
        r, e = config
        # the drop covers observed sessions r .. before e; on a fine grid, up to e
        return -((grid >= r) & (grid < e)).astype(float)
    if cls == "unrepaired_rupture":
        return -(grid >= config).astype(float)
    raise ValueError(f"Unknown class {cls!r}. Valid classes: {list(CLASSES)}.")


def design_on(grid: np.ndarray, t: np.ndarray, cls: str, config) -> np.ndarray:
    """Design of one configuration evaluated at ``grid`` (e.g. a fine grid for plots);
    the U's scale comes from the dyad's own first and last observed sessions ``t``."""
    grid = np.asarray(grid, dtype=float)
    x = grid - 1.0
    one = np.ones_like(x)
    if cls == "linear":
        return np.column_stack([one, x])
    z = extra_column(grid, t, cls, config)
    if cls == "u_shaped":
        return np.column_stack([one, z])
    return np.column_stack([one, x, z])


def design(t: np.ndarray, cls: str, config) -> np.ndarray:
    """Design of one configuration at the dyad's observed sessions ``t``."""
    return design_on(t, t, cls, config)


# ==================================================================== hyperparameters
@dataclass(frozen=True)
class Hyperparameters:
    """Prior hyperparameters of the change-point model (original score units).

    Variances are in units of the residual variance :math:`\\sigma^2` (the
    normal-inverse-gamma convention). ``class_probs`` follows :data:`CLASSES`.
    """

    noise_shape: float = 3.0
    noise_scale: float = 0.1
    level_mean: float = 3.5
    level_var: float = 25.0
    slope_mean: float = 0.0
    slope_var: float = 0.05
    depth_mean: float = 0.8
    depth_var: float = 9.0
    amplitude_mean: float = 0.8
    amplitude_var: float = 9.0
    class_probs: tuple[float, float, float, float] = (0.25, 0.25, 0.25, 0.25)

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.name == "class_probs":
                continue
            value = getattr(self, f.name)
            if not isinstance(value, (int, float, np.floating, np.integer)) or not np.isfinite(value):
                raise ValueError(
                    f"The '{f.name}' hyperparameter must be a finite number. Got {value!r} instead."
                )
            if (f.name.endswith("_var") or f.name.startswith("noise_")) and value <= 0:
                raise ValueError(
                    f"The '{f.name}' hyperparameter must be > 0. Got {value!r} instead."
                )
        p = np.asarray(self.class_probs, dtype=float)
        if p.shape != (K,) or np.any(~np.isfinite(p)) or np.any(p < 0) or p.sum() <= 0:
            raise ValueError(
                f"The 'class_probs' hyperparameter must be {K} non-negative numbers in the order "
                f"{list(CLASSES)}. Got {self.class_probs!r} instead."
            )
        object.__setattr__(self, "class_probs", tuple(float(v) for v in p / p.sum()))

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Hyperparameters:
        """Build from a mapping (e.g. ``result.hyperparameters``); extra keys are ignored."""
        names = {f.name for f in fields(cls)}
        # result.hyperparameters also carries how they were obtained: not hyperparameters
        unknown = [k for k in values
                   if k not in names and not k.startswith("eb_") and k != "source"]
        if unknown:
            raise ValueError(f"Unknown hyperparameter name(s): {unknown}. Valid names: {sorted(names)}.")
        kwargs = {k: v for k, v in values.items() if k in names}
        if "class_probs" in kwargs:
            cp = kwargs["class_probs"]
            if isinstance(cp, Mapping):
                cp = [cp[c] for c in CLASSES]
            kwargs["class_probs"] = tuple(float(v) for v in cp)
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["class_probs"] = list(self.class_probs)
        return d

    # -- standardisation: y' = (y - loc) / sd -----------------------------------------------
    def standardise(self, loc: float, sd: float) -> Hyperparameters:
        return replace(self, **standardise_mapping(
            {k: getattr(self, k) for k in _LOCATED}, loc, sd))

    def unstandardise(self, loc: float, sd: float) -> Hyperparameters:
        return replace(self, **unstandardise_mapping(
            {k: getattr(self, k) for k in _LOCATED}, loc, sd))


#: Every hyperparameter, in the order of :class:`Hyperparameters`.
NAMES: tuple[str, ...] = tuple(f.name for f in fields(Hyperparameters))
#: The continuous hyperparameters that the compiled class-evidence kernel differentiates,
#: in the order of its ``theta`` (the noise shape is fixed within a kernel call).
KERNEL_THETA: tuple[str, ...] = NAMES[1:-1]
#: Hyperparameters that move with the score's location and scale.
_LOCATED = ("noise_scale", "level_mean", "slope_mean", "depth_mean", "amplitude_mean")


def standardise_mapping(h: Mapping[str, Any], loc: float, sd: float) -> dict[str, Any]:
    """Hyperparameters (any subset, scalars or arrays) on the scale of ``(y - loc) / sd``."""
    out = dict(h)
    if "noise_scale" in h:
        out["noise_scale"] = h["noise_scale"] / sd**2
    if "level_mean" in h:
        out["level_mean"] = (h["level_mean"] - loc) / sd
    for k in ("slope_mean", "depth_mean", "amplitude_mean"):
        if k in h:
            out[k] = h[k] / sd
    return out


def unstandardise_mapping(h: Mapping[str, Any], loc: float, sd: float) -> dict[str, Any]:
    """Inverse of :func:`standardise_mapping` (back to the original score scale)."""
    out = dict(h)
    if "noise_scale" in h:
        out["noise_scale"] = h["noise_scale"] * sd**2
    if "level_mean" in h:
        out["level_mean"] = h["level_mean"] * sd + loc
    for k in ("slope_mean", "depth_mean", "amplitude_mean"):
        if k in h:
            out[k] = h[k] * sd
    return out


def as_hyperparameters(hyperparameters: Any) -> Hyperparameters:
    """A :class:`Hyperparameters` from itself or a mapping (e.g. ``result.hyperparameters``)."""
    if isinstance(hyperparameters, Hyperparameters):
        return hyperparameters
    if isinstance(hyperparameters, Mapping):
        return Hyperparameters.from_dict(hyperparameters)
    raise ValueError(
        "The 'hyperparameters' parameter must be an ExactHyperparameters or a mapping (e.g. "
        f"result.hyperparameters). Got {type(hyperparameters).__name__} instead."
    )


def prior_moments(h: Any, cls: str) -> tuple[np.ndarray, np.ndarray]:
    """Prior means and variances (units of sigma^2) of ``cls``'s coefficients, in design order.

    ``h``: :class:`Hyperparameters` or a mapping of hyperparameter names.
    """
    get = h.__getitem__ if isinstance(h, Mapping) else lambda k: getattr(h, k)
    names = COEFFICIENTS[cls]
    return (np.array([float(get(f"{n}_mean")) for n in names]),
            np.array([float(get(f"{n}_var")) for n in names]))


# ========================================================= empirical-Bayes coordinates
#: The continuous hyperparameters optimised by empirical Bayes, and their transforms:
#: ``log``; ``logratio`` (log of the ratio to the noise shape); ``lognoise`` (log of the
#: ratio to the typical residual SD); ``id``.
TRANSFORMS: tuple[tuple[str, str], ...] = (
    ("noise_shape", "log"), ("noise_scale", "logratio"),
    ("level_mean", "id"), ("level_var", "log"),
    ("slope_mean", "id"), ("slope_var", "log"),
    ("depth_mean", "lognoise"), ("depth_var", "log"),
    ("amplitude_mean", "lognoise"), ("amplitude_var", "log"),
)
#: Lower bound of the prior mean depth and amplitude, in typical residual SDs
#: (sqrt(noise_scale / noise_shape)), during empirical Bayes (``min_effect``).
MIN_EFFECT = 1.0
#: Box bounds of the optimiser's coordinates (:data:`TRANSFORMS`), standardised scores.
BOUNDS = {
    "noise_shape": (math.log(0.3), math.log(200.0)),
    "noise_scale": (math.log(1e-6), math.log(1e2)),
    "level_mean": (-10.0, 10.0),
    "level_var": (math.log(1e-2), math.log(1e6)),
    "slope_mean": (-2.0, 2.0),
    "slope_var": (math.log(1e-8), math.log(1e3)),
    "depth_mean": (math.log(MIN_EFFECT), math.log(50.0)),
    "depth_var": (math.log(1e-3), math.log(1e5)),
    "amplitude_mean": (math.log(MIN_EFFECT), math.log(50.0)),
    "amplitude_var": (math.log(1e-3), math.log(1e5)),
}


def to_theta(h: Hyperparameters) -> np.ndarray:
    """Optimiser coordinates.

    The noise scale enters as log(scale / shape) (less correlated with the shape);
    the prior mean depth and amplitude as the log of their ratio to the typical
    residual SD sqrt(scale / shape), so that their lower bound (``MIN_EFFECT``) is a
    box constraint. Positive values must be positive here (means included).
    """
    typical_sd = math.sqrt(h.noise_scale / h.noise_shape)
    out = []
    for n, t in TRANSFORMS:
        v = getattr(h, n)
        if t == "log":
            out.append(math.log(v))
        elif t == "logratio":
            out.append(math.log(v / h.noise_shape))
        elif t == "lognoise":
            out.append(math.log(max(v, 1e-12) / typical_sd))
        else:
            out.append(v)
    return np.array(out)


def from_theta(theta: np.ndarray, class_probs) -> Hyperparameters:
    """Inverse of :func:`to_theta`, with the given class proportions."""
    kw = {}
    for (n, t), v in zip(TRANSFORMS, theta):
        kw[n] = math.exp(v) if t in ("log", "logratio", "lognoise") else float(v)
    kw["noise_scale"] *= kw["noise_shape"]
    typical_sd = math.sqrt(kw["noise_scale"] / kw["noise_shape"])
    for n, t in TRANSFORMS:
        if t == "lognoise":
            kw[n] *= typical_sd
    return Hyperparameters(**kw, class_probs=tuple(class_probs))


# ===================================================================== standardisation
def guard_sd(loc: float, sd: float) -> float:
    """The standardising SD, or 1.0 for (numerically) constant scores."""
    # relative, not absolute: scores in any unit (1e-12 .. 1e12) are standardised alike
    if not np.isfinite(sd) or sd <= max(1e-12 * abs(loc), np.finfo(float).tiny):
        return 1.0
    return sd


def standardisation(frame: pd.DataFrame) -> tuple[float, float]:
    """Cohort mean and SD of the scores (SD 1 when the scores are constant)."""
    y = frame["score"].to_numpy(dtype=float)
    loc = float(np.mean(y))
    return loc, guard_sd(loc, float(np.std(y)))
