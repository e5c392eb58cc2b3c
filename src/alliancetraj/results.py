"""The one classification result type shared by every method.

Every model (exact, pymc, growth, rules, pelt) returns a
:class:`ClassificationResult`, so outcome models, plots, benchmarks and the CLI
work for every method without special cases.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import DataError, format_ids

__all__ = ["CHANGEPOINT_COLUMNS", "CLASSES", "CLASS_LABELS", "ClassificationResult", "empty_changepoints",
           "idata_path"]

CLASSES: tuple[str, ...] = ("linear", "u_shaped", "v_shaped", "unrepaired_rupture")

#: Readable class names for tables, figures and text (the same words everywhere).
CLASS_LABELS: dict[str, str] = {
    "linear": "Linear",
    "u_shaped": "U-shaped",
    "v_shaped": "V-shaped",
    "unrepaired_rupture": "Unrepaired rupture",
}

#: Columns of :attr:`ClassificationResult.changepoints`, in order. ``*_low``/``*_high``
#: bound the credible set (or interval) at :attr:`ClassificationResult.credible_level`;
#: methods without uncertainty repeat the point value. NaN where the dyad's class
#: has no such quantity (``repair_session`` of an unrepaired rupture, everything for
#: ``linear``). ``turning_session`` is the minimum of a ``u_shaped`` trajectory.
CHANGEPOINT_COLUMNS: tuple[str, ...] = (
    "rupture_session", "rupture_low", "rupture_high",
    "repair_session", "repair_low", "repair_high",
    "depth", "depth_low", "depth_high",
    "turning_session",
)


def empty_changepoints(index: pd.Index) -> pd.DataFrame:
    """A change-point table of NaN for the given dyads (to be filled by a method)."""
    return pd.DataFrame(np.nan, index=index, columns=list(CHANGEPOINT_COLUMNS))


def _version() -> str:
    from ._version import __version__

    return __version__


@dataclass(eq=False)
class ClassificationResult:
    """Per-dyad trajectory classes with their uncertainty.

    Build it with :meth:`from_probabilities`; the fields are then consistent by
    construction (labels are the most probable class, ties to the earlier class in
    :data:`CLASSES`).

    Attributes
    ----------
    labels : pandas.Series
        Index dyad id, values in :data:`CLASSES` (categorical in that order).
    probabilities : pandas.DataFrame
        Index dyad id, columns :data:`CLASSES`, rows sum to 1.
    changepoints : pandas.DataFrame
        One row per dyad, columns :data:`CHANGEPOINT_COLUMNS`.
    method : str
        The method that made the result.
    settings : dict
        The options the method ran with (JSON-serialisable values).
    log_evidence : pandas.DataFrame or None
        Per-class log marginal likelihood (Bayesian methods).
    hyperparameters : dict
        Fitted or given prior hyperparameters (empty when the method has none).
    diagnostics : dict
        Sampler or optimiser diagnostics (R-hat, ESS, divergences, convergence).
    excluded : list
        Dyads excluded before fitting (too few sessions), with the reason in
        ``settings["exclusion_rule"]`` where relevant.
    exact : bool
        True where probabilities are exact posterior probabilities (no sampling).
    credible_level : float
        Level of the change-point credible sets.
    extras : dict
        Method-specific objects (e.g. ArviZ ``InferenceData`` under ``"idata"``).
    idata : arviz.InferenceData or None
        The sampler's draws (``method="pymc"``): groups ``posterior``, ``sample_stats``,
        ``log_likelihood`` and ``observed_data``; None for methods that do not sample.
    """

    labels: pd.Series
    probabilities: pd.DataFrame
    changepoints: pd.DataFrame
    method: str
    settings: dict[str, Any] = field(default_factory=dict)
    log_evidence: pd.DataFrame | None = None
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    diagnostics: dict[str, Any] = field(default_factory=dict)
    excluded: list[Any] = field(default_factory=list)
    exact: bool = False
    credible_level: float = 0.9
    extras: dict[str, Any] = field(default_factory=dict)

    # ----------------------------------------------------------------------- building
    @classmethod
    def from_probabilities(
        cls,
        probabilities: pd.DataFrame | np.ndarray,
        *,
        index: pd.Index | None = None,
        method: str,
        changepoints: pd.DataFrame | None = None,
        **kwargs: Any,
    ) -> ClassificationResult:
        """Build a result from class probabilities (rows are normalised to sum 1).

        Parameters
        ----------
        probabilities : DataFrame with columns CLASSES, or array (n_dyads, 4)
        index : Index, optional
            Dyad ids, required when ``probabilities`` is an array.
        method : str
        changepoints : DataFrame, optional
            Indexed by dyad; missing columns of :data:`CHANGEPOINT_COLUMNS` are NaN.
        **kwargs
            Other fields (settings, log_evidence, hyperparameters, ...).
        """
        if isinstance(probabilities, pd.DataFrame):
            missing = [c for c in CLASSES if c not in probabilities.columns]
            if missing:
                raise ValueError(f"probabilities lack class column(s) {missing}")
            index = probabilities.index
            p = probabilities.loc[:, list(CLASSES)].to_numpy(dtype=float)
        else:
            if index is None:
                raise ValueError("index is required when probabilities is an array")
            p = np.asarray(probabilities, dtype=float)
        if p.ndim != 2 or p.shape[1] != len(CLASSES) or p.shape[0] != len(index):
            raise ValueError(
                f"probabilities must have shape (n_dyads, {len(CLASSES)}); got {p.shape}"
            )
        if not np.all(np.isfinite(p)) or np.any(p < 0):
            raise ValueError("probabilities must be finite and non-negative")
        total = p.sum(axis=1, keepdims=True)
        if np.any(total <= 0):
            raise ValueError("every dyad needs a positive total probability")
        p = p / total
        index = pd.Index(index, name="dyad")
        probs = pd.DataFrame(p, index=index, columns=pd.Index(CLASSES, name="class"))
        labels = pd.Series(
            pd.Categorical.from_codes(np.argmax(p, axis=1), categories=list(CLASSES)),
            index=index,
            name="label",
        )
        cp = empty_changepoints(index)
        if changepoints is not None:
            unknown = [c for c in changepoints.columns if c not in CHANGEPOINT_COLUMNS]
            if unknown:
                raise ValueError(f"unknown change-point column(s) {unknown}")
            cp.loc[:, list(changepoints.columns)] = changepoints.reindex(index).to_numpy(float)
        return cls(labels=labels, probabilities=probs, changepoints=cp, method=method, **kwargs)

    @classmethod
    def from_labels(
        cls, labels: pd.Series, *, method: str, changepoints: pd.DataFrame | None = None,
        **kwargs: Any,
    ) -> ClassificationResult:
        """Build a result from hard labels (one-hot probabilities)."""
        bad = ~labels.isin(CLASSES)
        if bad.any():
            raise ValueError(f"labels outside CLASSES: {sorted(set(labels[bad]))}")
        codes = pd.Categorical(labels, categories=list(CLASSES)).codes
        onehot = np.zeros((len(labels), len(CLASSES)))
        onehot[np.arange(len(labels)), codes] = 1.0
        return cls.from_probabilities(
            onehot, index=labels.index, method=method, changepoints=changepoints, **kwargs
        )

    # ------------------------------------------------------------------------ views
    @property
    def idata(self):
        """The sampler's ``arviz.InferenceData`` (``extras["idata"]``), or None.

        For trace plots, ``az.summary`` and LOO (``az.loo(result.idata)``); saved by
        :meth:`to_netcdf` beside the result and read back by :meth:`read_netcdf`.
        """
        return self.extras.get("idata")

    @property
    def dyads(self) -> pd.Index:
        return self.probabilities.index

    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:
        counts = self.labels.value_counts().reindex(list(CLASSES), fill_value=0)
        mix = ", ".join(f"{k}={v}" for k, v in counts.items())
        return (f"ClassificationResult(method={self.method!r}, n_dyads={len(self)}, "
                f"exact={self.exact}, {mix})")

    def summary(self) -> pd.DataFrame:
        """Class counts, proportions and mean probability of the assigned class."""
        p_assigned = self.probabilities.to_numpy()[
            np.arange(len(self)), self.labels.cat.codes.to_numpy()
        ]
        df = pd.DataFrame({"label": self.labels.to_numpy(), "p": p_assigned})
        out = df.groupby("label", observed=False)["p"].agg(["size", "mean"])
        out = out.reindex(list(CLASSES))
        out.columns = ["n_dyads", "mean_probability"]
        out["share"] = out["n_dyads"] / max(len(self), 1)
        out["expected_share"] = self.probabilities.mean(axis=0).reindex(list(CLASSES))
        out.index.name = "class"
        return out[["n_dyads", "share", "expected_share", "mean_probability"]]

    def to_frame(self) -> pd.DataFrame:
        """One tidy row per dyad: label, the four probabilities and the change points."""
        probs = self.probabilities.add_prefix("p_")
        probs.columns.name = None
        out = pd.concat([self.labels.astype(str), probs, self.changepoints], axis=1)
        return out

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, *, method: str = "from table",
                   dyad: Any = "dyad") -> ClassificationResult:
        """Rebuild a result from :meth:`to_frame` output (e.g. the table ``classify`` wrote).

        Parameters
        ----------
        frame : DataFrame
            Indexed by dyad, or with the dyad column ``dyad``; the columns
            ``p_linear``, ``p_u_shaped``, ``p_v_shaped``, ``p_unrepaired_rupture`` and
            any of :data:`CHANGEPOINT_COLUMNS` (``label`` is recomputed).
        method : str
            Recorded as the result's method (the table does not say which made it).
        dyad : column name
            The dyad id column when the ids are not the index.

        Examples
        --------
        >>> import pandas as pd
        >>> import alliancetraj as at
        >>> res = at.ClassificationResult.from_labels(
        ...     pd.Series(["linear", "v_shaped"], index=["a", "b"]), method="rules")
        >>> at.ClassificationResult.from_frame(res.to_frame().reset_index()).labels.tolist()
        ['linear', 'v_shaped']
        """
        if dyad in frame.columns:
            frame = frame.set_index(dyad)
        wanted = [f"p_{c}" for c in CLASSES]
        missing = [c for c in wanted if c not in frame.columns]
        if missing:
            raise DataError(
                f"The classes table lacks column(s) {format_ids(missing)} (columns present: "
                f"{format_ids([str(c) for c in frame.columns], limit=12)}). Give the table "
                "that `classify` wrote (one row per dyad, a dyad column and p_<class> columns)."
            )
        if frame.index.has_duplicates:
            raise DataError(
                f"The classes table repeats dyad id(s) "
                f"{format_ids(frame.index[frame.index.duplicated()].unique().tolist())}; give "
                "one row per dyad."
            )
        probs = frame[wanted].apply(pd.to_numeric, errors="coerce")
        bad = ~np.isfinite(probs.to_numpy(float)).all(axis=1) | (probs.to_numpy(float) < 0).any(1)
        if bad.any():
            raise DataError(
                f"The classes table has missing, negative or non-numeric probabilities for "
                f"dyad(s) {format_ids(frame.index[bad].tolist())}; give the table `classify` "
                "wrote."
            )
        probs.columns = list(CLASSES)
        cp = frame[[c for c in CHANGEPOINT_COLUMNS if c in frame.columns]]
        return cls.from_probabilities(probs, method=method,
                                      changepoints=cp.apply(pd.to_numeric, errors="coerce"))

    # ---------------------------------------------------------------------- xarray
    def to_xarray(self):
        """Return an :class:`xarray.Dataset` with dims ``dyad`` and ``class``.

        Variables: ``probability`` (dyad, class), ``label`` (dyad), the change-point
        columns (dyad) and, where present, ``log_evidence`` (dyad, class). A sampled
        result (``method="pymc"``) adds its diagnostics as variables: ``r_hat``,
        ``ess_bulk`` and ``ess_tail`` (dim ``parameter``: the worst value over each
        sampled parameter's elements), ``r_hat_max``, ``ess_bulk_min``, ``ess_tail_min``
        and ``divergences`` (scalars). The attrs record the method, the package version,
        whether the probabilities are exact, and JSON-encoded settings, hyperparameters
        and diagnostics. Written with ``ds.to_netcdf(path)`` and read back by
        :meth:`from_xarray`.
        """
        import xarray as xr

        dyad = _netcdf_safe_index(self.dyads)
        data_vars: dict[str, Any] = {
            "probability": (("dyad", "class"), self.probabilities.to_numpy(float)),
            "label": (("dyad",), self.labels.astype(str).to_numpy().astype("U")),
        }
        for col in self.changepoints.columns:
            data_vars[col] = (("dyad",), self.changepoints[col].to_numpy(float))
        if self.log_evidence is not None:
            data_vars["log_evidence"] = (
                ("dyad", "class"),
                self.log_evidence.reindex(index=self.dyads, columns=list(CLASSES)).to_numpy(float),
            )
        data_vars.update(_diagnostic_vars(self.diagnostics))
        attrs = {
            "method": self.method,
            "alliancetraj_version": _version(),
            "exact": int(bool(self.exact)),
            "credible_level": float(self.credible_level),
            "settings": _dumps(self.settings),
            "hyperparameters": _dumps(self.hyperparameters),
            "diagnostics": _dumps(self.diagnostics),
            "excluded": _dumps(list(self.excluded)),
            "dyad_dtype": _dtype_tag(self.dyads),
        }
        return xr.Dataset(
            data_vars,
            coords={"dyad": dyad, "class": np.array(CLASSES, dtype="U")},
            attrs=attrs,
        )

    @classmethod
    def from_xarray(cls, ds) -> ClassificationResult:
        """Rebuild a result from :meth:`to_xarray` output (e.g. read from netCDF)."""
        if "probability" not in ds or "dyad" not in ds.coords:
            raise DataError("This dataset was not written by ClassificationResult.to_xarray().")
        index = _restore_index(ds["dyad"].to_numpy(), ds.attrs.get("dyad_dtype", "str"))
        classes = [str(c) for c in ds["class"].to_numpy()]
        probs = pd.DataFrame(ds["probability"].to_numpy(), index=index, columns=classes)
        cps = {c: ds[c].to_numpy() for c in ds.data_vars if c in CHANGEPOINT_COLUMNS}
        cp = pd.DataFrame(cps, index=index) if cps else None
        log_ev = None
        if "log_evidence" in ds:
            log_ev = pd.DataFrame(ds["log_evidence"].to_numpy(), index=pd.Index(index, name="dyad"),
                                  columns=list(CLASSES))
        return cls.from_probabilities(
            probs,
            method=str(ds.attrs.get("method", "unknown")),
            changepoints=cp,
            settings=json.loads(ds.attrs.get("settings", "{}")),
            hyperparameters=json.loads(ds.attrs.get("hyperparameters", "{}")),
            diagnostics=json.loads(ds.attrs.get("diagnostics", "{}")),
            excluded=json.loads(ds.attrs.get("excluded", "[]")),
            exact=bool(int(ds.attrs.get("exact", 0))),
            credible_level=float(ds.attrs.get("credible_level", 0.9)),
            log_evidence=log_ev,
        )

    def to_netcdf(self, path) -> None:
        """Write :meth:`to_xarray` to a netCDF file, and :attr:`idata` beside it.

        A result with an :attr:`idata` (``method="pymc"``) also writes it, with
        ArviZ, to :func:`idata_path` (``classes.nc`` -> ``classes.idata.nc``) and
        records that name in the result file's ``idata_file`` attribute. Both files
        are written beside their targets and moved into place when complete, so an
        interrupted write leaves the previous files intact. An open file object gets
        the result alone.
        """
        import os

        from ._files import atomic_paths, write_atomic

        ds = self.to_xarray()
        if not isinstance(path, (str, os.PathLike)):  # an open file object: written as given
            ds.to_netcdf(path)
            return
        if self.idata is None:
            write_atomic(path, ds.to_netcdf)
            return
        beside = idata_path(path)
        ds.attrs["idata_file"] = beside.name
        with atomic_paths(path, beside) as (tmp, tmp_idata):
            ds.to_netcdf(tmp)
            self.idata.to_netcdf(str(tmp_idata))

    @classmethod
    def read_netcdf(cls, path) -> ClassificationResult:
        """Read a result written by :meth:`to_netcdf` (with its :attr:`idata` when saved)."""
        import os

        import xarray as xr

        with xr.open_dataset(path) as ds:
            result = cls.from_xarray(ds.load())
            beside = ds.attrs.get("idata_file")
        if beside and isinstance(path, (str, os.PathLike)):
            where = Path(path).with_name(str(beside))
            if not where.is_file():
                raise DataError(
                    f"{str(path)!r} was saved with its sampler draws in {where.name!r}, which "
                    f"is not beside it. Put {where.name!r} in the folder of {str(path)!r}."
                )
            result.extras["idata"] = _read_idata(where)
        return result


# ------------------------------------------------------------------------------ helpers
def idata_path(path) -> Path:
    """Where :meth:`ClassificationResult.to_netcdf` saves the ``InferenceData`` for ``path``.

    Examples
    --------
    >>> from alliancetraj.results import idata_path
    >>> idata_path("out/classes.nc").name
    'classes.idata.nc'
    """
    return Path(path).with_suffix(".idata.nc")


def _read_idata(path: Path):
    import arviz as az

    with az.rc_context({"data.load": "eager"}):  # read into memory: the file is not held open
        return az.from_netcdf(str(path))


def _diagnostic_vars(diagnostics: Mapping[str, Any]) -> dict[str, Any]:
    """A sampler's R-hat, ESS and divergences as Dataset variables (empty for other methods)."""
    if "r_hat_max" not in diagnostics:
        return {}
    out: dict[str, Any] = {}
    per = diagnostics.get("per_variable") or {}
    if per:
        names = np.array(list(per), dtype="U")
        for key in ("r_hat", "ess_bulk", "ess_tail"):
            values = [float(per[v].get(key, np.nan)) for v in per]
            out[key] = _named_array(("parameter",), values, {"parameter": names})
    for key in ("r_hat_max", "ess_bulk_min", "ess_tail_min"):
        value = diagnostics.get(key)
        out[key] = ((), np.float64(np.nan if value is None else value))
    if diagnostics.get("divergences") is not None:
        out["divergences"] = ((), np.int64(diagnostics["divergences"]))
    return out


def _named_array(dims: tuple[str, ...], values, coords: Mapping[str, Any]):
    import xarray as xr

    return xr.DataArray(np.asarray(values, dtype=float), dims=dims, coords=dict(coords))


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (pd.Series, pd.Index)):
        return obj.tolist()
    if isinstance(obj, pd.DataFrame):
        return obj.to_dict(orient="list")
    if isinstance(obj, Mapping):
        return dict(obj)
    return str(obj)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, default=_json_default, allow_nan=True)


def _dtype_tag(index: pd.Index) -> str:
    if pd.api.types.is_integer_dtype(index.dtype):
        return "int"
    if pd.api.types.is_float_dtype(index.dtype):
        return "float"
    return "str"


def _netcdf_safe_index(index: pd.Index) -> np.ndarray:
    tag = _dtype_tag(index)
    if tag == "int":
        return index.to_numpy(dtype=np.int64)
    if tag == "float":
        return index.to_numpy(dtype=float)
    text = [str(v) for v in index]
    if len(set(text)) < len(text):
        seen: dict[str, object] = {}
        clash = []
        for v, s in zip(index, text):
            if s in seen and seen[s] is not v:
                clash.append(f"{seen[s]!r} and {v!r}")
            seen.setdefault(s, v)
        raise DataError(
            f"Dyad ids {format_ids(clash)} would both be stored as the same text in the "
            "'dyad' coordinate. Give every dyad an id of one type (e.g. all strings) "
            "before classifying."
        )
    return np.array(text, dtype="U")


def _restore_index(values: np.ndarray, tag: str) -> pd.Index:
    if tag == "int":
        return pd.Index(values.astype(np.int64), name="dyad")
    if tag == "float":
        return pd.Index(values.astype(float), name="dyad")
    return pd.Index([str(v) for v in values], name="dyad")
