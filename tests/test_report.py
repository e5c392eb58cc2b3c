"""The HTML report is self-contained and holds the figures and tables it promises."""

from __future__ import annotations

import base64
import io
from html.parser import HTMLParser

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")

import matplotlib.pyplot as plt

import alliancetraj as at
from alliancetraj.report import build_report, confusion_table, example_dyads, write_report
from alliancetraj.results import CLASS_LABELS

LABEL_OF = {v: k for k, v in CLASS_LABELS.items()}


class Page(HTMLParser):
    """Collects images (by id of their figure), tables (as cell text) and references."""

    def __init__(self) -> None:
        super().__init__()
        self.images: dict[str, bytes] = {}
        self.tables: dict[str, list[list[str]]] = {}
        self.refs: list[str] = []
        self.tags: set[str] = set()
        self._figure: str | None = None
        self._table: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.add(tag)
        for key in ("src", "href"):
            if key in attrs:
                self.refs.append(attrs[key])
        if tag == "figure":
            self._figure = attrs.get("id")
        elif tag == "img":
            head, data = attrs["src"].split(",", 1)
            assert head == "data:image/png;base64"
            self.images[self._figure] = base64.b64decode(data)
        elif tag == "table":
            self._table = attrs.get("id")
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[self._table][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def parse(text: str) -> Page:
    page = Page()
    page.feed(text)
    return page


def png_shape(data: bytes) -> tuple[int, ...]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return plt.imread(io.BytesIO(data)).shape


@pytest.fixture(scope="module")
def cohort():
    return at.simulate_cohort(n_dyads=40, seed=5)


@pytest.fixture(scope="module")
def result(cohort):
    truth = cohort.truth
    rng = np.random.default_rng(2)
    codes = pd.Categorical(truth["true_class"], categories=at.CLASSES).codes
    p = rng.dirichlet(np.ones(4), size=len(truth))
    p[np.arange(len(truth)), codes] += rng.uniform(0.0, 1.0, size=len(truth))
    cp = truth[["rupture_session", "repair_session", "depth"]]
    return at.ClassificationResult.from_probabilities(
        p, index=truth.index, method="truth+noise", changepoints=cp
    )


@pytest.fixture(scope="module")
def effects():
    return pd.DataFrame(
        {
            "estimate": [0.31, 0.52, -0.47],
            "std_error": [0.1, 0.1, 0.1],
            "ci_low": [0.11, 0.32, -0.67],
            "ci_high": [0.51, 0.72, -0.27],
            "p_value": [0.002, 0.0001, 0.0004],
        },
        index=pd.Index(["u_shaped", "v_shaped", "unrepaired_rupture"], name="class"),
    )


@pytest.fixture(scope="module")
def page(tmp_path_factory, cohort, result, effects):
    path = write_report(
        tmp_path_factory.mktemp("report") / "sub" / "report.html",
        result,
        cohort.sessions,
        effects=effects,
        truth=cohort.truth,
        title="Test <report>",
        meta={"simulated dyads": 40, "seed": 5},
        notes=["fallback & note"],
        files=["classification.csv"],
    )
    text = path.read_text(encoding="utf-8")
    return text, parse(text)


def test_report_is_self_contained(page):
    text, parsed = page
    assert text.startswith("<!DOCTYPE html>")
    assert all(ref.startswith("data:image/png;base64,") for ref in parsed.refs)
    assert not {"script", "link", "iframe"} & parsed.tags
    assert "Test &lt;report&gt;" in text and "fallback &amp; note" in text


def test_report_header_says_what_was_analysed(page, result):
    text, _ = page
    for needle in ("simulated dyads", "40", "seed", at.__version__, result.method):
        assert needle in text


def test_report_embeds_every_figure_as_png(page):
    _, parsed = page
    expected = {
        "figure-probabilities",
        "figure-trajectories",
        "figure-dyad-0",
        "figure-dyad-1",
        "figure-dyad-2",
        "figure-effects",
    }
    assert expected <= set(parsed.images)
    for name, data in parsed.images.items():
        height, width, _ = png_shape(data)
        # sane sizes: readable, no bigger than the page at 100 dpi, not a sliver
        assert 150 < height <= 1000 and 300 < width <= 1250, (name, height, width)
        assert 0.2 < height / width < 1.5, (name, height, width)


def test_report_tables_hold_the_numbers(page, result, effects, cohort):
    _, parsed = page
    summary = parsed.tables["summary-table"]
    rows = {LABEL_OF[r[0]]: r[1:] for r in summary if r and r[0] in LABEL_OF}
    expected = result.summary()
    for cls in at.CLASSES:
        assert int(rows[cls][0]) == expected.loc[cls, "n_dyads"]
        assert float(rows[cls][1]) == pytest.approx(expected.loc[cls, "share"], abs=5e-4)
    eff = {LABEL_OF[r[0]]: r[1:] for r in parsed.tables["effects-table"] if r and r[0] in LABEL_OF}
    assert set(eff) == set(effects.index)
    assert eff["v_shaped"][0] == "0.520" and eff["v_shaped"][-1] == "<0.001"
    cm = confusion_table(cohort.truth, result)
    conf = {LABEL_OF[r[0]]: r[1:] for r in parsed.tables["confusion-table"]
            if r and r[0] in LABEL_OF}
    for cls in at.CLASSES:
        assert [int(v) for v in conf[cls]] == [*cm.loc[cls].tolist(), cm.loc[cls].sum()]


def test_confusion_table_counts_truth_against_estimate(cohort, result):
    cm = confusion_table(cohort.truth, result)
    assert list(cm.index) == list(at.CLASSES) == list(cm.columns)
    assert cm.to_numpy().sum() == len(result)
    direct = pd.crosstab(cohort.truth["true_class"].astype(str), result.labels.astype(str))
    for t in direct.index:
        for p in direct.columns:
            assert cm.loc[t, p] == direct.loc[t, p]


def test_example_dyads_follow_the_stated_rule(result):
    chosen = example_dyads(result)
    labels = result.labels.astype(str)
    probs = result.probabilities
    clearest = [probs.loc[labels.index[labels == c], c].idxmax() for c in at.CLASSES
                if (labels == c).any()]
    assert chosen[:-1] == clearest
    assert chosen[-1] == probs.drop(index=clearest).max(axis=1).idxmin()
    assert example_dyads(result, n=2) == clearest[:2]


def test_example_dyads_show_their_four_probabilities(page, result):
    text, parsed = page
    assert "Chosen by a fixed rule: for each class" in text
    rows = parsed.tables["dyads-table"]
    assert rows[0][2:6] == [f"P({CLASS_LABELS[c]})" for c in at.CLASSES]
    for row in rows[1:]:
        dyad = next(d for d in result.dyads if str(d) == row[0])
        expected = [f"{v:.2f}" for v in result.probabilities.loc[dyad, list(at.CLASSES)]]
        assert row[2:6] == expected


def test_report_reads_like_a_results_section(page):
    text, parsed = page
    body = text.split("<body>", 1)[1]
    # a methods paragraph and a guide to the probabilities, before the results
    assert body.index('id="methods"') < body.index('id="how-to-read"') < body.index(
        'id="summary"')
    # one effects table, one forest plot, one confusion table; no repeated summary text
    assert body.count("<table") == len(parsed.tables) == 4
    assert sum(k.startswith("figure-effects") for k in parsed.images) == 1
    assert "<pre" not in body and "figure-confusion" not in parsed.images
    # readable labels, no snake_case class names or column headers in the visible text
    visible = " ".join(cell for table in parsed.tables.values() for row in table for cell in row)
    for word in (*at.CLASSES[1:], "n_dyads", "std_error", "p_value", "expected_share"):
        assert word not in visible
    assert "U-shaped" in visible


def test_methods_paragraph_is_written_from_the_settings():
    # 150 dyads: on the module's 40-dyad cohort the exact engine assigns one dyad to the
    # reference class, which relate_outcomes (rightly) refuses to estimate
    cohort = at.simulate_cohort(n_dyads=150, seed=5)
    res = at.classify(cohort.sessions, method="rules")
    fit = at.relate_outcomes(at.classify(cohort.sessions, progress=False), cohort.outcomes,
                             outcome="recovery", covariates=["baseline_severity"])
    text = build_report(res, cohort.sessions, effects=fit, units="RAS points", scale=(1, 5))
    methods = text.split('id="methods"', 1)[1].split("</section>", 1)[0]
    n = cohort.sessions.groupby("dyad").size()
    assert f"{len(cohort.sessions):,} rated sessions of {len(n)}" in methods
    assert f"({n.min()} to {n.max()} sessions per dyad" in methods
    assert "declared as 1 to 5" in methods
    assert "labelled by rules" in methods and "hard" in methods
    assert "bias-adjusted three-step estimator (BCH" in methods
    assert "adjusted for baseline_severity" in methods and "in RAS points" in methods
    assert "95% confidence intervals" in methods
    exact = build_report(at.classify(cohort.sessions, progress=False), cohort.sessions)
    assert "exact posterior probabilities" in exact and "empirical Bayes" in exact


def test_report_without_outcomes_or_truth_says_so(cohort, result):
    text = build_report(result, cohort.sessions, examples=[result.dyads[0]])
    parsed = parse(text)
    assert "No outcome model" in text
    assert "figure-confusion" not in parsed.images and "figure-effects" not in parsed.images
    assert {k for k in parsed.images if k.startswith("figure-dyad")} == {"figure-dyad-0"}
