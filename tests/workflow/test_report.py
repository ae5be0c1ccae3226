"""The report answers on its first page, in a real browser (Debian's headless Chromium).

Snakemake's report is a React app: its opening view (the workflow description
beside the rule graph) exists only once JavaScript ran. We render the tiny run's
``report.html`` with ``chromium --headless --dump-dom`` and look for the answer
in the rendered page (outside ``<script>``, where the description also sits as a
string): the comparison table with every strategy's name, the strategy figure,
the leakage and control status, the GAN label fidelity and the QC decisions.

CI (``.ci/run``) installs ``chromium`` and sets ``CI=1``: there a missing
browser fails the test instead of skipping it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("CI"):
        pytest.fail("chromium is not installed; .ci/run installs Debian's chromium for this test")
    pytest.skip("chromium is not installed (apt-get install chromium); CI installs it and runs this test")


class _Visible(HTMLParser):
    """Element ids, image sources and text of a page, leaving out <script> and <style>."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.images: dict[str, str] = {}
        self.text: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag in ("script", "style"):
            self._skip += 1
        if attributes.get("id"):
            self.ids.add(str(attributes["id"]))
        if tag == "img" and attributes.get("id"):
            self.images[str(attributes["id"])] = str(attributes.get("src") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.text.append(data)


@pytest.fixture(scope="module")
def opening_page(tiny_run, workflow_helpers) -> _Visible:
    browser = _chromium()
    report = tiny_run.workdir / "report_first_page.html"
    run = workflow_helpers.run_workflow(
        tiny_run.workdir, ROOT / "tests" / "workflow" / "tiny.yaml", extra_args=["--report", str(report)], timeout=300
    )
    assert run.returncode == 0, run.describe()
    dom = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000",
         "--dump-dom", report.resolve().as_uri()],
        capture_output=True, encoding="utf-8", errors="replace", timeout=180, check=True,
    ).stdout
    page = _Visible()
    page.feed(dom)
    return page


def test_opening_page_holds_the_table_and_figure(opening_page, tiny_run) -> None:
    text = " ".join(" ".join(opening_page.text).split())
    assert "brainaug-comparison" in opening_page.ids, sorted(opening_page.ids)
    strategies = pd.read_csv(tiny_run.results / "tables" / "augmentation_comparison.csv")["strategy"]
    for name in strategies:
        assert re.search(rf"\b{re.escape(name)}\b", text), f"strategy {name!r} not on the first page"
    assert opening_page.images.get("brainaug-strategy-figure", "").startswith("data:image/png;base64,")


def test_opening_page_holds_the_checks_fidelity_and_qc(opening_page) -> None:
    text = " ".join(" ".join(opening_page.text).split())
    for element in ("brainaug-leakage", "brainaug-control-status", "brainaug-gan-fidelity"):
        assert element in opening_page.ids, sorted(opening_page.ids)
    assert "Leakage checks passed" in text
    assert "Not a control run" in text
    assert "Judge's balanced accuracy on synthetic volumes (label fidelity)" in text
    assert re.search(r"QC flagged \d+ of 18 scans \(preprocess\.qc_outliers: stop\s*\)", text), text[:2000]
