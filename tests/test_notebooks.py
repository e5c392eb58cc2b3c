"""The example notebooks (jupytext percent scripts in ``examples/``) run top to bottom.

Each is converted with jupytext and executed with nbclient on the ``python3`` kernel,
which jupyter_client starts with this interpreter (``sys.executable``), so the
notebooks see the same environment as the tests. A notebook that needs a part of
the package that is not installed is skipped with the missing module named.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

jupytext = pytest.importorskip("jupytext", reason="needs the 'notebooks' extra")
nbclient = pytest.importorskip("nbclient", reason="needs the 'notebooks' extra")
pytest.importorskip("ipykernel", reason="needs the 'notebooks' extra")
import nbformat  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TIMEOUT = 300  # per cell, seconds; each notebook takes well under a minute on its own

#: module (or "module:attribute") each notebook needs beyond the core package
REQUIRES: dict[str, list[str]] = {
    "01_quickstart.py": ["alliancetraj.models.exact", "alliancetraj.outcomes:relate_outcomes"],
    "02_rupture_repair.py": [
        "alliancetraj.models.exact:dyad_posterior",
        "alliancetraj.models.pymc_mixture",
    ],
    "03_growth_models.py": [
        "alliancetraj.models.growth:GrowthModel",
        "alliancetraj.models.alliance_symptom:alliance_symptom_model",
        "alliancetraj.simulate:simulate_alliance_symptoms",
    ],
    "04_outcomes_mediation.py": [
        "alliancetraj.models.exact",
        "alliancetraj.outcomes:relate_outcomes",
        "alliancetraj.mediation:mediation",
        "alliancetraj.simulate:simulate_mediation",
    ],
    "05_benchmarking.py": [
        "alliancetraj.models.exact",
        "alliancetraj.models.rules",
        "alliancetraj.bench:run_benchmark",
        "alliancetraj.plot.benchmark:plot_runtime",
    ],
    "06_monitoring.py": [
        "alliancetraj.models.exact",
        "alliancetraj.monitor:monitor",
        "alliancetraj.plot.monitor:plot_caseload",
    ],
}
#: notebooks that take longer (PyMC compiles and samples); still run by `make test`
SLOW = {"02_rupture_repair.py"}


def _missing(requirements: list[str]) -> list[str]:
    missing = []
    for req in requirements:
        module, _, attr = req.partition(":")
        if importlib.util.find_spec(module) is None:
            missing.append(module)
            continue
        if attr and not hasattr(importlib.import_module(module), attr):
            missing.append(req.replace(":", "."))
    return missing


def _notebooks():
    for path in sorted(EXAMPLES.glob("*.py")):
        marks = [pytest.mark.slow] if path.name in SLOW else []
        yield pytest.param(path, id=path.stem, marks=marks)


def _execute(nb, cwd: Path):
    # figures inline (tests/conftest.py sets MPLBACKEND=Agg for this process)
    env = {**os.environ, "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    client = nbclient.NotebookClient(
        nb, timeout=TIMEOUT, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
    )
    return client.execute(env=env)


def test_every_notebook_declares_its_requirements():
    names = {p.name for p in EXAMPLES.glob("*.py")}
    assert names == set(REQUIRES), "add the notebook to REQUIRES in tests/test_notebooks.py"


def test_kernel_is_this_interpreter(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell("import sys; print(sys.executable)"))
    _execute(nb, tmp_path)
    printed = nb.cells[0].outputs[0]["text"].strip()
    assert Path(printed).resolve() == Path(sys.executable).resolve()


@pytest.mark.parametrize("path", list(_notebooks()))
def test_notebook_runs(path: Path, tmp_path: Path):
    missing = _missing(REQUIRES[path.name])
    if missing:
        pytest.skip(f"{path.name} needs {', '.join(missing)}, which is not installed yet")
    nb = jupytext.read(path)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
    _execute(nb, tmp_path)
    errors = [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
        if o.get("output_type") == "error"
    ]
    assert not errors
    streams = " ".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                       for o in c.outputs if o.get("output_type") == "stream")
    assert "IProgress not found" not in streams
    images = [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
        if "image/png" in o.get("data", {})
    ]
    assert images, "every example notebook draws at least one figure"


def test_jupytext_execute_runs_from_the_command_line(tmp_path):
    """`jupytext --set-kernel python3 --execute` (as the README says) needs nbconvert: the
    notebooks extra installs it."""
    import subprocess

    pytest.importorskip("nbconvert", reason="needs the 'notebooks' extra")
    script = tmp_path / "tiny.py"
    script.write_text("# %%\nimport alliancetraj as at\nprint(at.CLASSES[1])\n")
    proc = subprocess.run([sys.executable, "-m", "jupytext", "--to", "notebook", "--set-kernel",
                           "python3", "--execute",
                           str(script)], capture_output=True, text=True, cwd=tmp_path,
                          timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    nb = nbformat.read(tmp_path / "tiny.ipynb", as_version=4)
    assert nb.cells[0].outputs[0]["text"].strip() == "u_shaped"
