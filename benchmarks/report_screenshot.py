"""Render the "Your own data" report in a real headless browser and keep a screenshot.

    nice python benchmarks/report_screenshot.py [--browser chromium]

Builds the README's own-data report (SRS 0-40, string ids, gaps; exact engine; ORS
change with BCH) in a temporary folder, opens it in headless Chromium (or Chrome) and
writes ``benchmarks/results/report_screenshot.png`` (the whole page, 1100 px wide) and
``report_screenshot.json`` (page height, image sizes, browser version). Needs a
Chromium-family browser on the PATH; nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "results"
WIDTH = 1100


def build(folder: Path) -> Path:
    import alliancetraj as at
    from alliancetraj.datasets import load_srs_example
    from alliancetraj.report import write_report

    raw_sessions, raw_outcomes = load_srs_example()
    sessions = at.load_sessions(raw_sessions, dyad="client", session="visit", score="srs",
                                scale=(0, 40))
    res = at.classify(sessions, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = at.relate_outcomes(res, raw_outcomes.set_index("client"), outcome="ors_change",
                                 covariates=["ors_baseline"])
    return write_report(folder / "srs_report.html", res, sessions, effects=fit,
                        units="ORS points", scale=(0, 40),
                        title="SRS alliance trajectories and ORS change",
                        meta={"data": "alliancetraj.datasets.load_srs_example()"})


def page_height(browser: str, page: Path) -> int:
    """The page's scroll height, from the browser's own layout."""
    probe = page.with_name("probe.html")
    text = page.read_text(encoding="utf-8").replace(
        "</body>", "<script>document.title = document.documentElement.scrollHeight;</script>"
                   "</body>")
    probe.write_text(text, encoding="utf-8")
    dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                          f"--window-size={WIDTH},1000", "--dump-dom", probe.as_uri()],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    start = dom.index("<title>") + len("<title>")
    return int(dom[start:dom.index("</title>", start)])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--browser", default=None, help="browser executable (default: "
                        "chromium, chromium-browser or google-chrome on the PATH)")
    args = parser.parse_args()
    browser = args.browser or next((b for b in ("chromium", "chromium-browser", "google-chrome")
                                    if shutil.which(b)), None)
    if browser is None:
        print("no Chromium-family browser found on the PATH", file=sys.stderr)
        return 1
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        page = build(Path(tmp))
        height = page_height(browser, page)
        shot = OUT / "report_screenshot.png"
        subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                        "--hide-scrollbars", f"--window-size={WIDTH},{height}",
                        f"--screenshot={shot}", page.as_uri()],
                       capture_output=True, timeout=120, check=True)
    version = subprocess.run([browser, "--version"], capture_output=True, text=True).stdout
    from PIL import Image

    with Image.open(shot) as im:
        size = im.size
    info = {"command": "nice python benchmarks/report_screenshot.py", "browser":
            version.strip(), "page_height_px": height, "screenshot_px": list(size)}
    (OUT / "report_screenshot.json").write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
