import subprocess
import sys

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
