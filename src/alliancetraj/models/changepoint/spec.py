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
    "DEFAULT_SIZE_FLOOR",
    "KERNEL_THETA",
    "MIN_SESSIONS",
    "MIN_SIZE_VAR",
    "NAMES",
    "SIZE_PRIOR_MEAN",
    "TRANSFORMS",
    "U_STEPS",
    "Hyperparameters",
    "Settings",
    "admissible",
    "as_hyperparameters",
    "design",
    "design_on",
    "dip",
    "extra_column",
    "from_theta",
    "guard_sd",
    "prior_moments",
    "standardisation",
    "standardise_mapping",
    "to_theta",
    "u_admissible",
    "u_dip",
    "u_shapes",
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
    "u_shaped": ("level", "slope", "amplitude"),
    "v_shaped": ("level", "slope", "depth"),
    "unrepaired_rupture": ("level", "slope", "depth"),
}
#: The class whose constrained coefficient is positive (all but ``linear``).
CONSTRAINED = {c: COEFFICIENTS[c][-1] if c != "linear" else None for c in CLASSES}


# ================================================================== configuration space
@dataclass(frozen=True)
class Settings:
    """The configuration space: what a rupture, a repair and a U's dip may be.

    A U's dip is a triangle ``(start, bottom, end)`` on the grid of tenths of the
    dyad's span of observed sessions (:data:`U_STEPS`); it covers at least
    ``u_min_width`` of the span and each side at least ``u_min_side`` of it and at least
    ``u_margin`` sessions (a U has no sudden side).
    """

    max_rupture_length: int = 4
    u_margin: float = 2.0
    min_pre: int = 2
    min_drop: int = 2
    u_min_width: float = 0.5
    u_min_side: float = 0.2


#: The default size floor (kappa): a rupture's depth or a U's amplitude is at least this many
#: residual SDs (the label convention).
DEFAULT_SIZE_FLOOR = 2.5
#: Positions of a U's start, bottom and end: tenths of the dyad's span of sessions.
U_STEPS = 10


def u_shapes(settings: Settings | None = None) -> np.ndarray:
    """``(K, 3)`` fractions ``(start, bottom, end)`` of the span: every U dip the settings allow
    before the per-dyad session condition (``u_margin``)."""
    settings = Settings() if settings is None else settings
    f = np.arange(U_STEPS + 1) / U_STEPS
    eps = 1e-9
    out = [(f[a], f[b], f[c]) for a in range(U_STEPS + 1) for b in range(a + 1, U_STEPS + 1)
           for c in range(b + 1, U_STEPS + 1)
           if f[c] - f[a] >= settings.u_min_width - eps and f[b] - f[a] >= settings.u_min_side - eps
           and f[c] - f[b] >= settings.u_min_side - eps]
    return np.array(out, dtype=float).reshape(-1, 3)


def dip(grid, start, bottom, end) -> np.ndarray:
    """The triangle ``D(t)`` at sessions ``grid``: 0 outside ``(start, end)``, rising linearly
    to 1 at ``bottom`` (every argument broadcasts)."""
    g = np.asarray(grid, dtype=float)
    down = np.clip((g - start) / np.maximum(bottom - start, 1e-12), 0.0, 1.0)
    up = np.clip((end - g) / np.maximum(end - bottom, 1e-12), 0.0, 1.0)
    return np.minimum(down, up)


def u_dip(grid: np.ndarray, first: float, span: float, shape) -> np.ndarray:
    """The triangular dip ``D(t)`` of U shape ``(start, bottom, end)`` (fractions of the span)
    at sessions ``grid``: 0 outside the dip, rising linearly to 1 at the bottom."""
    s, w, e = (first + span * float(v) for v in shape)
    return dip(grid, s, w, e)


def u_admissible(span: float, shapes: np.ndarray, settings: Settings) -> np.ndarray:
    """Which U shapes a dyad with this span of sessions admits (sides of ``u_margin`` sessions)."""
    sides = np.minimum(shapes[:, 1] - shapes[:, 0], shapes[:, 2] - shapes[:, 1]) * span
    return sides >= settings.u_margin - 1e-9   # (K,) for a scalar span, (D, K) for (D, 1)


def admissible(t: np.ndarray, settings: Settings | None = None) -> dict[str, list]:
    """Admissible configurations of one dyad with sorted observed sessions ``t``.

    ``linear``: ``[None]``; ``u_shaped``: the dip's ``(start, bottom, end)`` sessions
    (:func:`u_shapes`, on the dyad's span); ``v_shaped``: ``(rupture, repair)``
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
        span = float(t[-1] - t[0])
        shapes = u_shapes(settings)
        for sh in shapes[u_admissible(span, shapes, settings)]:
            out["u_shaped"].append(tuple(float(t[0] + span * v) for v in sh))
    for i in range(settings.min_pre, n):           # i: 0-based index of the rupture session
        for j in range(i + 1, n):
            if t[j] - t[i] <= settings.max_rupture_length:
                out["v_shaped"].append((float(t[i]), float(t[j])))
        if n - i >= settings.min_drop:
            out["unrepaired_rupture"].append(float(t[i]))
    return out


def extra_column(grid: np.ndarray, t: np.ndarray, cls: str, config) -> np.ndarray:
    """The configuration-dependent design column at ``grid``: minus the U's triangular dip
    (``config`` = its start, bottom and end sessions) or minus the drop indicator
    (``r <= s < e`` repaired, ``s >= r`` unrepaired)."""
    grid = np.asarray(grid, dtype=float)
    if cls == "u_shaped":
        return -dip(grid, *config)
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
    return np.column_stack([one, x, z])


def design(t: np.ndarray, cls: str, config) -> np.ndarray:
    """Design of one configuration at the dyad's observed sessions ``t``."""
    return design_on(t, t, cls, config)


# ==================================================================== hyperparameters
@dataclass(frozen=True)
class Hyperparameters:
    """Prior hyperparameters of the change-point model (original score units).

    Variances are in units of the residual variance :math:`\\sigma^2` (the
    normal-inverse-gamma convention). ``size_floor`` (kappa) is the smallest rupture
    depth or U amplitude, in residual SDs: the prior of the depth (amplitude) is
    truncated to ``d > size_floor * sigma`` (the label convention: a drop smaller than
    that is noise, and the linear class is not nested in the others). ``class_probs``
    follows :data:`CLASSES`.
    """

    noise_shape: float = 3.0
    noise_scale: float = 0.1
    level_mean: float = 3.5
    level_var: float = 25.0
    slope_mean: float = 0.0
    slope_var: float = 0.05
    depth_mean: float = 0.0
    depth_var: float = 25.0
    amplitude_mean: float = 0.0
    amplitude_var: float = 25.0
    size_floor: float = DEFAULT_SIZE_FLOOR
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
            if f.name == "size_floor" and value < 0:
                raise ValueError(
                    f"The 'size_floor' hyperparameter must be >= 0 (residual SDs). Got {value!r} "
                    "instead."
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
KERNEL_THETA: tuple[str, ...] = tuple(
    n for n in NAMES if n not in ("noise_shape", "size_floor", "class_probs"))
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
#: The continuous hyperparameters of empirical Bayes, and their transforms: ``log``;
#: ``logratio`` (log of the ratio to the noise shape); ``id``.
TRANSFORMS: tuple[tuple[str, str], ...] = (
    ("noise_shape", "log"), ("noise_scale", "logratio"),
    ("level_mean", "id"), ("level_var", "log"),
    ("slope_mean", "id"), ("slope_var", "log"),
    ("depth_mean", "id"), ("depth_var", "log"),
    ("amplitude_mean", "id"), ("amplitude_var", "log"),
)
#: The prior means of the depth and the amplitude: 0, fixed (empirical Bayes and the PyMC
#: mixture hold them there). Above the size floor the prior is then a half-normal-like tail
#: whose spread (``*_var``) is estimated; a free mean is barely identified beside the
#: spread under the truncation (the PyMC mixture's chains split on that ridge: R-hat 1.6 on
#: 500 dyads with free means, 1.002 with means at 0).
SIZE_PRIOR_MEAN = 0.0
#: Smallest prior variance of the depth and amplitude (residual variances) empirical Bayes
#: may choose: a floor, so that a small cohort cannot shrink the size priors to a point.
MIN_SIZE_VAR = 16.0
#: Box bounds of the optimiser's coordinates (:data:`TRANSFORMS`), standardised scores
#: (equal bounds hold a coordinate fixed).
BOUNDS = {
    "noise_shape": (math.log(0.3), math.log(200.0)),
    "noise_scale": (math.log(1e-6), math.log(1e2)),
    "level_mean": (-10.0, 10.0),
    "level_var": (math.log(1e-2), math.log(1e6)),
    "slope_mean": (-2.0, 2.0),
    "slope_var": (math.log(1e-8), math.log(1e3)),
    "depth_mean": (SIZE_PRIOR_MEAN, SIZE_PRIOR_MEAN),
    "depth_var": (math.log(MIN_SIZE_VAR), math.log(1e5)),
    "amplitude_mean": (SIZE_PRIOR_MEAN, SIZE_PRIOR_MEAN),
    "amplitude_var": (math.log(MIN_SIZE_VAR), math.log(1e5)),
}


def to_theta(h: Hyperparameters) -> np.ndarray:
    """Optimiser coordinates (the noise scale as log(scale / shape): less correlated with
    the shape)."""
    out = []
    for n, t in TRANSFORMS:
        v = getattr(h, n)
        if t == "log":
            out.append(math.log(v))
        elif t == "logratio":
            out.append(math.log(v / h.noise_shape))
        else:
            out.append(v)
    return np.array(out)


def from_theta(theta: np.ndarray, class_probs,
               size_floor: float = DEFAULT_SIZE_FLOOR) -> Hyperparameters:
    """Inverse of :func:`to_theta`, with the given class proportions and size floor."""
    kw = {}
    for (n, t), v in zip(TRANSFORMS, theta):
        kw[n] = math.exp(v) if t in ("log", "logratio") else float(v)
    kw["noise_scale"] *= kw["noise_shape"]
    return Hyperparameters(**kw, size_floor=float(size_floor), class_probs=tuple(class_probs))


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
