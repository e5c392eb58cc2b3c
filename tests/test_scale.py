"""Scale-out of the exact engine on Dask: equality with the in-memory engine.

One 2-worker LocalCluster (threads, so the suite stays light on a 2-core machine)
serves the module; cohorts are small.
"""

import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

import alliancetraj as at
from alliancetraj.errors import ExcludedDyadsWarning
from alliancetraj.models import exact_phases
from alliancetraj.results import CHANGEPOINT_COLUMNS

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

pytestmark = pytest.mark.filterwarnings(
    # dask 2026.8's Parquet reader (dask/dataframe/io/parquet/arrow.py, read_partition) calls
    # df.reset_index(..., inplace=True) and df.set_index(..., inplace=True), deprecated in
    # pandas 3.1; the calls are inside dask's tasks, not ours, so they cannot be fixed here
    # (worker threads share the warning filters).
    "ignore:The inplace keyword in DataFrame.reset_index is deprecated"
    ":pandas.errors.Pandas4Warning",
    "ignore:The inplace keyword in DataFrame.set_index is deprecated:pandas.errors.Pandas4Warning",
)

FIXED = {
    "noise_shape": 4.0,
    "noise_scale": 0.2,
    "level_mean": 3.6,
    "level_var": 4.0,
    "slope_mean": 0.02,
    "slope_var": 0.005,
    "depth_mean": 0.8,
    "depth_var": 1.0,
    "amplitude_mean": 0.8,
    "amplitude_var": 1.0,
    "class_probs": [0.4, 0.2, 0.2, 0.2],
}


@pytest.fixture(scope="module")
def sessions():
    s = at.simulate_cohort(240, seed=11, n_sessions=(6, 14)).sessions
    short = pd.DataFrame({"dyad": ["zz_short"] * 3, "session": [1, 2, 3], "score": [3.0, 3.5, 3.2]})
    return pd.concat([s, short], ignore_index=True)


@pytest.fixture(scope="module")
def client():
    with warnings.catch_warnings():
        # LocalCluster start-up may warn about ports taken by another engineer's cluster on
        # this shared machine; the HTTP server takes an ephemeral loopback port (with None
        # it tries 8787 and, when that is taken, tornado leaks the socket it failed to
        # bind: a ResourceWarning at garbage collection, in whichever test runs then), and
        # the scheduler listens on inproc (threads).
        warnings.simplefilter("ignore", UserWarning)
        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False,
            dashboard_address="127.0.0.1:0",
        )
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


def _in_memory(sessions, **options):
    with pytest.warns(ExcludedDyadsWarning, match=r"Excluded 1 of 241 dyad"):
        return at.classify(sessions, method="exact", progress=False, **options)


def _dask(source, **options):
    with pytest.warns(ExcludedDyadsWarning, match=r"Excluded 1 of 241 dyad"):
        res = at.classify(source, method="exact", **options)
    return res


def _assert_same(res, ref, atol):
    assert list(res.dyads) == list(ref.dyads)
    np.testing.assert_allclose(
        res.probabilities.to_numpy(), ref.probabilities.to_numpy(), rtol=0, atol=atol
    )
    assert (res.labels == ref.labels).all()
    cp, cp_ref = res.changepoints.to_numpy(), ref.changepoints.to_numpy()
    np.testing.assert_array_equal(np.isnan(cp), np.isnan(cp_ref))
    np.testing.assert_allclose(cp, cp_ref, rtol=0, atol=atol * 10)
    np.testing.assert_allclose(res.log_evidence.to_numpy(), ref.log_evidence.to_numpy(), rtol=atol)
    assert res.excluded == ref.excluded and "zz_short" in res.excluded
    assert res.exact and res.method == "exact"
    assert res.settings == ref.settings


def _write_dataset(sessions, path, n_files=3):
    """A partitioned Parquet dataset: whole dyads per file, files in dyad order."""
    dyads = pd.unique(sessions["dyad"])
    path.mkdir()
    for k, ids in enumerate(np.array_split(dyads, n_files)):
        sessions[sessions["dyad"].isin(ids)].to_parquet(path / f"part-{k}.parquet", index=False)
    return path


def test_importing_scale_does_not_import_dask():
    code = "import sys, alliancetraj.scale; print('dask' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_missing_dask_says_how_to_install(monkeypatch, sessions):
    monkeypatch.setitem(sys.modules, "distributed", None)
    from alliancetraj.scale import classify_dask

    with pytest.raises(ImportError, match=r"pip install alliancetraj\[dask\]"):
        classify_dask(sessions)


def test_embedded_local_cluster_when_no_client_is_running(sessions):
    try:
        distributed.default_client()
        pytest.skip("a client is already running in this process")
    except ValueError:
        pass
    ref = _in_memory(sessions, hyperparameters=FIXED, fit_class_probs=False)
    with _dask(
        dd.from_pandas(sessions, npartitions=2, sort=False),
        hyperparameters=FIXED,
        fit_class_probs=False,
        workers=2,
        processes=False,  # threads: the light variant of the default process workers
    ) as res:
        assert res.diagnostics["dask"]["n_workers"] == 2
        _assert_same(res.compute(), ref, atol=1e-10)
    with pytest.raises(ValueError):  # closed with the result
        distributed.default_client()


@pytest.mark.parametrize("t_cdf", ["auto", "table"])
def test_fixed_hyperparameters_equal_in_memory_engine(client, sessions, t_cdf):
    ref = _in_memory(sessions, hyperparameters=FIXED, fit_class_probs=False, t_cdf=t_cdf)
    ddf = dd.from_pandas(sessions, npartitions=3, sort=False)  # cuts dyads at row boundaries
    res = _dask(ddf, hyperparameters=FIXED, fit_class_probs=False, t_cdf=t_cdf)
    assert res.diagnostics["dask"]["repartitioned_by_dyad"]
    assert res.n_dyads == len(ref)
    assert res.probabilities.npartitions == res.table.npartitions >= 2
    out = res.compute()
    _assert_same(out, ref, atol=1e-10)
    assert out.hyperparameters == ref.hyperparameters
    assert out.diagnostics["log_marginal_likelihood"] == pytest.approx(
        ref.diagnostics["log_marginal_likelihood"], rel=1e-12
    )
    assert out.diagnostics["standardisation"]["sd"] == pytest.approx(
        ref.diagnostics["standardisation"]["sd"], rel=1e-13
    )


def test_class_proportions_by_distributed_em(client, sessions):
    ref = _in_memory(sessions, hyperparameters=FIXED)
    res = _dask(
        dd.from_pandas(sessions.sample(frac=1.0, random_state=1), npartitions=4, sort=False),
        hyperparameters=FIXED,
    ).compute()
    np.testing.assert_allclose(
        res.hyperparameters["class_probs"], ref.hyperparameters["class_probs"], rtol=0, atol=1e-9
    )
    _assert_same(res, ref, atol=1e-8)


@pytest.mark.parametrize("one_task", [True, False], ids=["one-task fit", "map-and-sum fit"])
def test_empirical_bayes_matches_in_memory_engine(client, sessions, tmp_path, monkeypatch,
                                                  one_task):

    if not one_task:     # force the map-and-sum objective used for large subsamples
        monkeypatch.setattr(exact_phases, "EB_ONE_TASK_MAX", 0)
    # The EB objective is summed per partition (float summation order differs); the
    # optimiser (50 correction pairs, ftol 1e-9) reaches the same optimum from either sum:
    # with scipy's defaults it stopped on a flat ridge at order-dependent points and the
    # class probabilities differed by up to ~0.05.
    ref = _in_memory(sessions, eb_max_dyads=80)
    res = _dask(_write_dataset(sessions, tmp_path / "cohort"), eb_max_dyads=80)
    assert not res.diagnostics["dask"]["repartitioned_by_dyad"]
    out = res.compute()
    h, h_ref = out.hyperparameters, ref.hyperparameters
    assert h["eb_n_dyads"] == h_ref["eb_n_dyads"] == 80
    assert h["eb_converged"] and h["source"] == "empirical_bayes"
    assert h["eb_loglik_subsample"] == pytest.approx(h_ref["eb_loglik_subsample"], rel=1e-9)
    for name in ("level_mean", "slope_mean", "depth_mean", "noise_scale", "noise_shape",
                 "amplitude_var", "depth_var"):
        assert h[name] == pytest.approx(h_ref[name], rel=1e-3), name
    diff = np.abs(out.probabilities.to_numpy() - ref.probabilities.to_numpy())
    assert diff.max() < 1e-5
    assert (out.labels == ref.labels).all()


def test_distributed_eb_objective_is_the_in_memory_objective(client, sessions):
    """Same subsample, same objective and gradient: only the summation order differs."""
    import math

    from alliancetraj import scale_run
    from alliancetraj.models import empirical_bayes as eb
    from alliancetraj.models import exact
    from alliancetraj.models.changepoint import spec, statistics

    frame = at.load_sessions(sessions.loc[sessions["dyad"] != "zz_short"], min_sessions=4)
    loc, sd = spec.standardisation(frame)
    settings = spec.Settings()
    dyads = pd.unique(frame["dyad"])
    step = math.ceil(len(dyads) / 50)
    sub = frame.loc[frame["dyad"].isin(dyads[::step])]
    stats = [statistics.block_stats(c, loc, sd, settings) for _, c in exact.panel_chunks(sub, 1024)]

    ddf = dd.from_pandas(frame, npartitions=3, sort=False).set_index("dyad").reset_index()
    futures, infos = scale_run.validated(dd, client, ddf, "dyad", "session", "score", None, False)
    order = scale_run.ordered(infos)
    futs = [futures[i["index"]] for i in order]
    groups, n_sub = scale_run.eb_groups(client, futs, order, len(dyads), 50, loc, sd, settings)
    executor = scale_run.DaskExecutor(client)
    evaluate = exact_phases.eb_objective(executor, groups)
    start = exact_phases.start_values(executor, groups)
    assert n_sub == len(dyads[::step])
    h0 = eb.moment_start(stats)
    np.testing.assert_allclose(spec.to_theta(start), spec.to_theta(h0), rtol=1e-12)
    for shift in (0.0, 0.3):
        theta = spec.to_theta(h0) + shift
        pi = np.array([0.4, 0.3, 0.2, 0.1])
        got, want = evaluate(theta, pi), exact.eb_partial(stats, theta, pi)
        assert got[0] == pytest.approx(want[0], rel=1e-12)
        np.testing.assert_allclose(got[1], want[1], rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(got[2], want[2], rtol=1e-12)


def test_directory_in_parquet_out_and_cli(client, sessions, tmp_path):
    from alliancetraj.cli import main
    from alliancetraj.scale import DaskClassificationResult

    src = _write_dataset(sessions, tmp_path / "cohort")
    ref = _in_memory(sessions, hyperparameters=FIXED, fit_class_probs=False)
    res = _dask(str(src), hyperparameters=FIXED, fit_class_probs=False, out=tmp_path / "res")
    assert res.path == str(tmp_path / "res")
    _assert_same(res.compute(), ref, atol=1e-10)
    again = DaskClassificationResult.read_parquet(tmp_path / "res").compute()
    _assert_same(again, ref, atol=1e-10)
    assert set(again.changepoints.columns) == set(CHANGEPOINT_COLUMNS)

    # the command line (empirical Bayes: a smaller cohort), connecting to the cluster by address
    small = _write_dataset(
        at.simulate_cohort(40, seed=2, n_sessions=8).sessions, tmp_path / "small", n_files=2
    )
    status = main(
        [
            "classify",
            str(small),
            "--out",
            str(tmp_path / "cli"),
            "--scheduler",
            client.scheduler.address,
        ]
    )
    assert status == 0
    table = pd.read_parquet(tmp_path / "cli")
    assert len(table) == 40 and "p_linear" in table.columns
    assert (tmp_path / "cli" / "_alliancetraj.json").is_file()


def test_bad_data_raise_data_error(client, sessions, tmp_path):
    bad = sessions.copy()
    bad.loc[7, "score"] = np.nan
    with pytest.raises(at.DataError, match="dropna"):
        at.classify(dd.from_pandas(bad, npartitions=2, sort=False), hyperparameters=FIXED)
    with pytest.raises(at.DataError, match=r"'alliance' .*not in the data"):
        at.classify(dd.from_pandas(sessions, npartitions=2), score="alliance")
    with pytest.raises(ValueError, match="Valid names"):
        at.classify(dd.from_pandas(sessions, npartitions=2), n_chains=4)
    with pytest.raises(ValueError, match="method='exact' only"):
        at.classify(dd.from_pandas(sessions, npartitions=2), method="rules")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    with pytest.raises(at.DataError, match="non-empty directory"):
        at.classify(dd.from_pandas(sessions, npartitions=2), out=tmp_path / "taken")


def _same_columns(table: pd.DataFrame, ref: pd.DataFrame) -> None:
    assert list(table.columns) == list(ref.columns)
    assert table.dtypes.to_dict() == ref.dtypes.to_dict()
    assert table.index.name == ref.index.name == "dyad"
    assert table.index.dtype == ref.index.dtype


def test_dask_table_has_the_in_memory_columns(client, sessions, tmp_path):
    from alliancetraj.cli import main
    from alliancetraj.scale import DaskClassificationResult

    ref = _in_memory(sessions, hyperparameters=FIXED, fit_class_probs=False)
    ddf = dd.from_pandas(sessions, npartitions=2, sort=False)
    res = _dask(ddf, hyperparameters=FIXED, fit_class_probs=False, out=tmp_path / "res")
    _same_columns(res.table.compute(), ref.to_frame())              # the lazy result, read back
    again = DaskClassificationResult.read_parquet(tmp_path / "res")
    _same_columns(again.table.compute(), ref.to_frame())
    _same_columns(pd.read_parquet(tmp_path / "res"), ref.to_frame())  # what others read
    # the evidence is kept (beside the table) and still reaches the in-memory result
    np.testing.assert_allclose(again.compute().log_evidence.to_numpy(),
                               ref.log_evidence.to_numpy(), rtol=1e-10)

    # the command line: a folder writes the table that a file writes
    small = at.simulate_cohort(30, seed=3, n_sessions=8).sessions
    small.to_csv(tmp_path / "small.csv", index=False)
    folder = _write_dataset(small, tmp_path / "small", n_files=2)
    common = ["--scheduler", client.scheduler.address]
    assert main(["classify", str(folder), "--out", str(tmp_path / "cli"), *common]) == 0
    assert main(["classify", str(tmp_path / "small.csv"), "--out",
                 str(tmp_path / "cli.parquet"), "--no-progress"]) == 0
    from_folder = pd.read_parquet(tmp_path / "cli")
    from_file = pd.read_parquet(tmp_path / "cli.parquet")
    assert list(from_folder.columns) == list(from_file.columns)
    assert from_folder.dtypes.to_dict() == from_file.dtypes.to_dict()


def test_results_written_before_the_split_still_read(client, sessions, tmp_path):
    """An output whose one table holds the evidence columns too (earlier versions)."""
    import json

    from alliancetraj.scale import META_FILE, DaskClassificationResult

    ref = _in_memory(sessions, hyperparameters=FIXED, fit_class_probs=False)
    res = _dask(dd.from_pandas(sessions, npartitions=2, sort=False),
                hyperparameters=FIXED, fit_class_probs=False, out=tmp_path / "res")
    old = tmp_path / "old"
    old.mkdir()
    joined = pd.concat([res.table.compute(), res.evidence.compute()], axis=1)
    assert joined.shape[1] == 20
    joined.to_parquet(old / "part.0.parquet")
    meta = json.loads((tmp_path / "res" / META_FILE).read_text())
    (old / META_FILE).write_text(json.dumps(meta))
    back = DaskClassificationResult.read_parquet(old)
    assert list(back.table.columns) == list(ref.to_frame().columns)
    _assert_same(back.compute(), ref, atol=1e-10)


class _Lines(__import__("logging").Handler):
    def __init__(self):
        super().__init__(level=0)
        self.records = []

    def emit(self, record):
        self.records.append(record)


@pytest.mark.parametrize("layout", ["simulated folder", "rows shuffled across files"])
def test_a_dask_run_logs_no_warnings(client, tmp_path, capfd, layout):
    """No ``distributed.shuffle ... WARNING`` (or other) lines, also when rows must move."""
    import logging

    from alliancetraj.cli import main

    folder = tmp_path / "sessions_parquet_dir"
    assert main(["simulate", "--out", f"{folder}/", "--format", "parquet", "--n-dyads", "60",
                 "--seed", "4"]) == 0
    if layout == "rows shuffled across files":   # dyads cut across files: a shuffle by dyad
        rows = pd.read_parquet(folder).sample(frac=1.0, random_state=0)
        for p in folder.glob("*.parquet"):
            p.unlink()
        for k, part in enumerate(np.array_split(np.arange(len(rows)), 3)):
            rows.iloc[part].to_parquet(folder / f"part-{k:04d}.parquet", index=False)
    capfd.readouterr()
    handler = _Lines()
    loggers = [logging.getLogger(n) for n in ("", "distributed", "dask", "alliancetraj")]
    for lg in loggers:
        lg.addHandler(handler)
    try:
        with at.classify(str(folder), hyperparameters=FIXED) as res:
            assert res.diagnostics["dask"]["repartitioned_by_dyad"] == (
                layout != "simulated folder")
            assert len(res.compute()) == 60
    finally:
        for lg in loggers:
            lg.removeHandler(handler)
    loud = [f"{r.name}: {r.getMessage()}" for r in handler.records if r.levelno >= logging.WARNING]
    assert loud == []
    err = capfd.readouterr().err
    assert "WARNING" not in err and "Warning" not in err, err
