"""Coverage study of relate_outcomes: bias and 95% interval coverage of class effects.

Simulates cohorts with known class effects (``simulate_cohort``), classifies them,
and fits every estimator of :func:`alliancetraj.relate_outcomes` (``bch``, ``ml``,
``draws``, ``modal``) for the continuous recovery score (gaussian) and, with ``--binomial``,
reliable improvement (log-odds). Two scenarios: ``moderate`` (the default cohort)
and ``hard`` (short, noisy series: classification is uncertain).

Classifier (``--classifier``):

``exact``
    ``alliancetraj.classify(sessions, method="exact")`` (the package default).
``synthetic``
    A calibrated stand-in: each dyad emits ``e_true + sigma * N(0, I)`` and its class
    probabilities are the exact Bayes posterior under the known class mix
    (``sigma`` 0.5 for ``moderate``, 0.9 for ``hard``).
``auto`` (default)
    ``exact`` when ``alliancetraj.models.exact`` imports, else ``synthetic``.

Outcome scales (``--scales``): ``standardised`` (the simulated recovery score, class
effects 0.3 / 0.5 / -0.5 SD), ``phq9`` (a PHQ-9-like total, ``round(12 - 5 * recovery)``:
integer points, mean near 12, effects -1.5 / -2.5 / +2.5 points, lower is better) and
``ras`` (a RAS-like total, ``round(80 + 12 * recovery)``: mean near 80, effects
+3.6 / +6 / -6 points). Rounding to whole points adds the discreteness of real totals;
the true effects are the standardised ones times the slope.

Cohort generator (``--generator module:function``, default
``alliancetraj:simulate_cohort``): any function called as
``generator(n_dyads, seed=rng, **scenario_options)`` that returns an object with
``sessions`` (long format: dyad, session, score), ``outcomes`` (indexed by dyad:
``recovery``, ``baseline_severity``, ``reliable_improvement``) and ``truth`` (indexed
by dyad: ``true_class``) - e.g. the robustness worlds of another module - plugs in
unchanged; ``run(..., generator=...)`` takes the function itself. True effects come from
``truth.attrs["outcome_effects"]`` / ``["binary_effects"]`` when the generator records
them, else from ``simulate_cohort``'s defaults.

Independent worlds (``--world NAME``, a key of :data:`alliancetraj.worlds.WORLDS`): cohorts
from a generator written independently of the engine (its ``recovered`` column is the
binary outcome); one scenario, ``world``, the world's own design at ``--n-dyads``.

Writes ``benchmarks/results/outcomes_coverage.{csv,md,json}`` and the per-cohort
estimates to ``benchmarks/results/outcomes_coverage_raw.csv``.

Run::

    nice python benchmarks/bench_outcomes_coverage.py --n-cohorts 200 --n-dyads 300
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import alliancetraj as at
from alliancetraj.errors import AllianceTrajWarning
from alliancetraj.simulate import DEFAULT_BINARY_EFFECTS, DEFAULT_OUTCOME_EFFECTS

RESULTS = Path(__file__).resolve().parent / "results"
MIX = np.array([0.4, 0.2, 0.2, 0.2])
METHODS = ("bch", "ml", "draws", "modal")
NON_REF = [c for c in at.CLASSES if c != "linear"]
#: outcome scales: name -> (slope, offset) applied to the standardised recovery score,
#: then rounded to whole points (None: left as is)
SCALES = {
    "standardised": None,
    "phq9": (-5.0, 12.0),
    "ras": (12.0, 80.0),
}
SCENARIOS = {
    # name: (simulate_cohort options, synthetic-classifier sigma)
    "moderate": ({}, 0.5),
    "hard": ({"n_sessions": (6, 8), "noise": 0.45}, 0.9),
}


def synthetic_result(truth: pd.DataFrame, sigma: float, rng: np.random.Generator):
    codes = truth["true_class"].cat.codes.to_numpy()
    eye = np.eye(len(at.CLASSES))
    signal = eye[codes] + sigma * rng.standard_normal((len(codes), len(at.CLASSES)))
    logp = np.log(MIX) - ((signal[:, None, :] - eye[None]) ** 2).sum(-1) / (2 * sigma**2)
    p = np.exp(logp - logp.max(axis=1, keepdims=True))
    return at.ClassificationResult.from_probabilities(p, index=truth.index, method="synthetic")


def exact_available() -> bool:
    try:
        import alliancetraj.models.exact  # noqa: F401
    except ImportError:
        return False
    return True


def load_generator(spec: str):
    """``"module:function"`` -> the function (the default: ``alliancetraj:simulate_cohort``)."""
    module, _, name = spec.partition(":")
    if not name:
        raise SystemExit(f"--generator must be module:function, got {spec!r}")
    return getattr(importlib.import_module(module), name)


def world_generator(name: str):
    """A ``generator(n_dyads, seed=rng)`` drawing cohorts from an independent world."""
    from alliancetraj.worlds import simulate_world

    def generate(n_dyads: int, seed, **_ignored):
        cohort = simulate_world(name, n_dyads, seed=seed)
        outcomes = cohort.outcomes.rename(columns={"recovered": "reliable_improvement"})
        return type(cohort)(cohort.sessions, outcomes, cohort.truth)

    return generate


def scaled_outcomes(outcomes: pd.DataFrame, scales: list[str]) -> pd.DataFrame:
    """Add one column ``recovery_<scale>`` per raw-score scale."""
    extra = {}
    for scale in scales:
        if SCALES[scale] is not None:
            slope, offset = SCALES[scale]
            extra[f"recovery_{scale}"] = np.round(offset + slope * outcomes["recovery"])
    return outcomes.assign(**extra)


def outcome_specs(scales: list[str], binomial: bool, truth_attrs: dict | None = None
                  ) -> list[tuple[str, str, str, dict]]:
    """(family, scale, column, true effects) for every outcome studied."""
    attrs = truth_attrs or {}
    gauss = {**DEFAULT_OUTCOME_EFFECTS, **attrs.get("outcome_effects", {})}
    binary = {**DEFAULT_BINARY_EFFECTS, **attrs.get("binary_effects", {})}
    specs = []
    for scale in scales:
        slope = 1.0 if SCALES[scale] is None else SCALES[scale][0]
        column = "recovery" if SCALES[scale] is None else f"recovery_{scale}"
        specs.append(("gaussian", scale, column,
                      {c: slope * e for c, e in gauss.items()}))
    if binomial:
        specs.append(("binomial", "log-odds", "reliable_improvement", binary))
    return specs


def run(n_cohorts: int, n_dyads: int, classifier: str, seed: int, binomial: bool,
        n_draws: int, priors: str = "pilot", pilot_size: int = 2000,
        scales: tuple[str, ...] = tuple(SCALES), generator=at.simulate_cohort,
        scenarios: dict | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = []
    class_rows = []
    for s_idx, (scenario, (sim_opts, sigma)) in enumerate((scenarios or SCENARIOS).items()):
        t0 = time.perf_counter()
        fixed = None
        if classifier == "exact" and priors == "pilot":
            # empirical Bayes once, on a large pilot cohort of the scenario; every replicate
            # cohort is then classified with these priors (class proportions still by EM)
            pilot = generator(
                pilot_size, seed=np.random.default_rng([seed, s_idx, 10**6]), **sim_opts)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", AllianceTrajWarning)
                # EB on every pilot dyad: classify's default (eb_max_dyads=400) would fit
                # the priors on a 400-dyad subsample, and that sampling error, frozen into
                # every replicate, miscalibrates the posteriors the same way in all of them
                fixed = at.classify(pilot.sessions, method="exact",
                                    eb_max_dyads=pilot_size).hyperparameters
        for r in range(n_cohorts):
            rng = np.random.default_rng([seed, s_idx, r])
            cohort = generator(n_dyads, seed=rng, **sim_opts)
            cohort_outcomes = scaled_outcomes(cohort.outcomes, list(scales))
            outcomes = outcome_specs(list(scales), binomial, dict(cohort.truth.attrs))
            if classifier == "exact":
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", AllianceTrajWarning)
                    res = at.classify(cohort.sessions, method="exact", hyperparameters=fixed)
            else:
                res = synthetic_result(cohort.truth, sigma, rng)
            true = cohort.truth["true_class"].reindex(res.dyads).astype(str)
            class_rows.append({
                "scenario": scenario, "cohort": r,
                "accuracy": float((res.labels.astype(str) == true).mean()),
                "mean_max_probability": float(res.probabilities.max(axis=1).mean()),
            })
            for family, scale, col, effects in outcomes:
                for method in METHODS:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", AllianceTrajWarning)
                        try:
                            fit = at.relate_outcomes(
                                res, cohort_outcomes, outcome=col,
                                covariates=["baseline_severity"], family=family, method=method,
                                n_draws=n_draws, seed=rng,
                            )
                            effects_table = fit.effects
                        except at.DataError:
                            # e.g. no dyad assigned to the reference class: a failed cohort
                            effects_table = pd.DataFrame(
                                np.nan, index=[c for c in effects if c != "linear"],
                                columns=["estimate", "std_error", "ci_low", "ci_high"])
                    for cls, row in effects_table.iterrows():
                        rows.append({
                            "scenario": scenario, "family": family, "scale": scale,
                            "method": method,
                            "class": cls, "cohort": r, "true": effects[cls],
                            "estimate": row["estimate"], "std_error": row["std_error"],
                            "ci_low": row["ci_low"], "ci_high": row["ci_high"],
                        })
            if (r + 1) % 25 == 0:
                print(f"  {scenario}: {r + 1}/{n_cohorts} cohorts "
                      f"({time.perf_counter() - t0:.0f} s)", flush=True)
    return pd.DataFrame(rows), pd.DataFrame(class_rows)


def summarise(raw: pd.DataFrame) -> pd.DataFrame:
    # fits without a finite solution (BCH logistic, hard cohorts) are counted in n_failed
    # and left out of the other columns
    n_failed = raw.assign(failed=raw["estimate"].isna()).groupby(
        ["scenario", "family", "scale", "method", "class"], sort=False)["failed"].sum()
    raw = raw.dropna(subset=["estimate"])
    raw = raw.assign(covered=(raw["ci_low"] <= raw["true"]) & (raw["true"] <= raw["ci_high"]),
                     error=raw["estimate"] - raw["true"])
    keys = ["scenario", "family", "scale", "method", "class"]
    g = raw.groupby(keys, sort=False)
    out = g.agg(
        true=("true", "first"),
        n_cohorts=("estimate", "count"),
        mean_estimate=("estimate", "mean"),
        bias=("error", "mean"),
        empirical_sd=("estimate", "std"),
        mean_std_error=("std_error", "mean"),
        coverage=("covered", "mean"),
    ).reset_index()
    out["n_failed"] = n_failed.reindex(
        pd.MultiIndex.from_frame(out[keys])).to_numpy().astype(int)
    out["relative_bias"] = out["bias"] / out["true"].abs()
    out["mc_se_bias"] = out["empirical_sd"] / np.sqrt(out["n_cohorts"])
    out["mc_se_coverage"] = np.sqrt(out["coverage"] * (1 - out["coverage"]) / out["n_cohorts"])
    out["se_ratio"] = out["mean_std_error"] / out["empirical_sd"]
    return out[[*keys, "true", "n_cohorts", "n_failed", "mean_estimate", "bias", "relative_bias",
                "mc_se_bias", "empirical_sd", "mean_std_error", "se_ratio", "coverage",
                "mc_se_coverage"]]


def md_table(df: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table (no tabulate dependency)."""
    cols = [str(c) for c in df.columns]
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in df.itertuples(index=False):
        out.append("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v)
                                     for v in row) + " |")
    return "\n".join(out)


def to_markdown(summary: pd.DataFrame, class_stats: pd.DataFrame, meta: dict) -> str:
    lines = [
        "# relate_outcomes coverage study",
        "",
        f"Command: `{meta['command']}`",
        "",
        f"Classifier: **{meta['classifier']}**. {meta['classifier_note']}",
        f"Cohorts: {meta['n_cohorts']} per scenario x {meta['n_dyads']} dyads; "
        f"runtime {meta['runtime_s']:.0f} s on {meta['machine']}; alliancetraj "
        f"{meta['version']}.",
        f"Cohort generator: `{meta['generator']}`. " + (
            "Scenario `world`: the independent world's own design; true effects from its "
            "truth (column `true`)."
            if meta.get("world") else
            "Scenarios: `moderate` = the generator's defaults; `hard` = 6-8 sessions, noise "
            "0.45 (synthetic classifier: sigma 0.5 / 0.9)."),
        "Outcome scales: `standardised` (the generator's recovery score), `phq9` = round(12 - 5 "
        "recovery), `ras` = round(80 + 12 recovery); true raw-scale effects are the "
        "standardised ones times the slope (-5, 12).",
        "Target for the default method (`bch`): coverage in [0.92, 0.98] and |bias| < 10% "
        "of the effect. `ml` is the ML three-step alternative; `draws` and `modal` are naive "
        "baselines.",
        "",
        "## Classification difficulty",
        "",
        md_table(class_stats.groupby("scenario", sort=False)[["accuracy",
                                                              "mean_max_probability"]]
                 .mean().reset_index()),
        "",
    ]
    for (family, scale), part in summary.groupby(["family", "scale"], sort=False):
        lines += [f"## {family} outcome, {scale} scale", ""]
        lines += [md_table(part.drop(columns=["family", "scale"])), ""]
    lines += ["## Default method (bch) against the target", ""]
    bch = summary[summary["method"] == "bch"]
    for _, row in bch.iterrows():
        ok_cov = 0.92 <= row["coverage"] <= 0.98
        ok_bias = abs(row["relative_bias"]) < 0.10
        lines.append(
            f"- {row['scenario']}/{row['family']}/{row['scale']}/{row['class']}: coverage "
            f"{row['coverage']:.3f} ({'ok' if ok_cov else 'OUT'}), relative bias "
            f"{row['relative_bias']:+.3f} ({'ok' if ok_bias else 'OUT'})"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-cohorts", type=int, default=200)
    parser.add_argument("--n-dyads", type=int, default=300)
    parser.add_argument("--classifier", choices=["auto", "exact", "synthetic"], default="auto")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--priors", choices=["pilot", "eb"], default="pilot",
                        help="exact engine: priors from EB on one pilot cohort per scenario "
                             "(default), or EB on every cohort (slow)")
    parser.add_argument("--n-draws", type=int, default=20)
    parser.add_argument("--binomial", action="store_true",
                        help="also study the binary outcome (reliable improvement)")
    parser.add_argument("--scales", default=",".join(SCALES),
                        help=f"comma-separated outcome scales of the gaussian outcome, from "
                             f"{list(SCALES)}")
    parser.add_argument("--generator", default="alliancetraj:simulate_cohort",
                        help="cohort generator module:function (see the module docstring)")
    parser.add_argument("--world", default=None,
                        help="draw cohorts from this independent world (alliancetraj.worlds) "
                             "instead of --generator; one scenario, 'world'")
    parser.add_argument("--out", default="outcomes_coverage",
                        help="file stem under benchmarks/results/")
    args = parser.parse_args(argv)
    scales = tuple(args.scales.split(","))
    unknown = [x for x in scales if x not in SCALES]
    if unknown:
        parser.error(f"unknown scale(s) {unknown}; choose from {list(SCALES)}")
    generator = load_generator(args.generator)
    scenarios = None
    if args.world is not None:
        generator = world_generator(args.world)
        scenarios = {"world": ({}, 0.7)}
    classifier = args.classifier
    if classifier == "auto":
        classifier = "exact" if exact_available() else "synthetic"
    note = (f"Exact Bayesian engine: classify(method='exact'), priors: {args.priors} (pilot = "
            "empirical Bayes on all dyads of one 2,000-dyad pilot cohort per scenario, class "
            "proportions by "
            "EM in every cohort)." if classifier == "exact" else
            "Calibrated synthetic classifier (exact Bayes posterior of a noisy class signal "
            "under the known class mix); not the package's exact engine.")
    command = "nice python benchmarks/bench_outcomes_coverage.py " + " ".join(
        sys.argv[1:] if argv is None else argv)
    print(f"$ {command}\nclassifier: {classifier}", flush=True)
    t0 = time.perf_counter()
    raw, class_stats = run(args.n_cohorts, args.n_dyads, classifier, args.seed, args.binomial,
                           args.n_draws, priors=args.priors, scales=scales, generator=generator,
                           scenarios=scenarios)
    runtime = time.perf_counter() - t0
    summary = summarise(raw)
    meta = {
        "command": command.strip(), "classifier": classifier, "classifier_note": note,
        "n_cohorts": args.n_cohorts, "n_dyads": args.n_dyads, "seed": args.seed,
        "n_draws": args.n_draws, "runtime_s": runtime, "scales": list(scales),
        "generator": f"alliancetraj.worlds:{args.world}" if args.world else args.generator,
        "world": args.world,
        "version": at.__version__,
        "machine": f"{platform.machine()} {platform.system()}",
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = RESULTS / args.out
    stem.parent.mkdir(parents=True, exist_ok=True)
    summary.to_csv(stem.with_suffix(".csv"), index=False)
    raw.to_csv(stem.parent / f"{stem.name}_raw.csv", index=False)
    stem.with_suffix(".md").write_text(to_markdown(summary, class_stats, meta))
    stem.with_suffix(".json").write_text(json.dumps(
        {**meta, "summary": summary.to_dict(orient="records"),
         "classification": class_stats.groupby("scenario")[["accuracy",
                                                              "mean_max_probability"]]
         .mean().to_dict(orient="index")}, indent=2, default=float))
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(summary.round(3).to_string(index=False))
    print(f"wrote {stem.with_suffix('.csv')}, {stem.with_suffix('.md')}, "
          f"{stem.with_suffix('.json')} in {runtime:.0f} s")
    print(f"command: {command}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
