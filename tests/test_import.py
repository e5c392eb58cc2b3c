import subprocess
import sys

import pytest

HEAVY = ("pymc", "pytensor", "arviz", "matplotlib", "dask", "statsmodels", "ruptures")


def test_import_is_light():
    code = (
        "import sys, alliancetraj;"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_public_names():
    import alliancetraj as at

    assert at.CLASSES == ("linear", "u_shaped", "v_shaped", "unrepaired_rupture")
    for name in at.__all__:
        assert hasattr(at, name), name
    assert issubclass(at.DataError, ValueError)


def _modules_after(code: str) -> set[str]:
    probe = f"{code}; import sys; print(','.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True)
    return set(out.stdout.strip().split(","))


def test_import_and_help_do_not_import_pandas_numpy_or_scipy():
    light = {"pandas", "numpy", "scipy"}
    assert not light & _modules_after("import alliancetraj")
    assert not light & _modules_after("import alliancetraj.cli as c; c.build_parser()")


def test_lazy_names_work_like_eager_ones():
    code = (
        "import alliancetraj as at, types\n"
        "from alliancetraj.classify import METHODS\n"      # the submodule first
        "from alliancetraj import classify, monitor, ClassificationResult, datasets\n"
        "assert callable(at.classify) and at.classify is classify, at.classify\n"
        "assert callable(at.monitor) and isinstance(at.datasets, types.ModuleType)\n"
        "assert set(at.__all__) <= set(dir(at))\n"

        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "ok", out.stderr
    submodule_first = "import alliancetraj as at; assert callable(at.io.to_panel); print('ok')"
    out = subprocess.run([sys.executable, "-c", submodule_first], capture_output=True, text=True)
    assert out.stdout.strip() == "ok", out.stderr
    import alliancetraj as at

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        at.nope  # noqa: B018
