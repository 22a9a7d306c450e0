"""`attnforge report` pages opened in a real browser (headless Debian chromium driven by Playwright): no JS or
console errors, every image decodes, every table carries the swept columns, sorting and filtering work."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from attnforge.cli.main import main
from attnforge.reports.html import swept_columns

pytestmark = pytest.mark.slow

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]


def _browser():  # noqa: ANN202 - (playwright, browser)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install playwright; it comes with the test extras)")
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    pw = sync_playwright().start()
    return pw, pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)


@pytest.fixture(scope="module")
def browser():  # noqa: ANN201
    pw, b = _browser()
    yield b
    b.close()
    pw.stop()


SPEC = """name: browser-test
mode: grid
accelerators: [flat, fusemax]
workloads: [bert-base, xlm]
seq_lens: [1k, 16k]
batch: [1, 8]
scope: attention
arch:
  buffer.bytes: [4194304, 16777216]
  dram.bandwidth_gib_s: [200, 800]
"""


def _make(kind: str, tmp: Path) -> Path:
    out = tmp / kind
    if kind == "compare":
        argv = ["compare", "--accels", "unfused,flat,fusemax,spatten", "--seq-len", "1k,4k,16k", "-o", str(out)]
    else:
        spec = tmp / "spec.yaml"
        spec.write_text(SPEC)
        argv = ["sweep", str(spec), "-o", str(out), "--quiet", "--workers", "2"]
    assert main(argv) == 0
    assert main(["report", str(out)]) == 0
    return out


@pytest.mark.parametrize("kind", ["compare", "sweep"])
def test_report_in_browser(kind: str, browser, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: ANN001
    out = _make(kind, tmp_path)
    capsys.readouterr()
    swept = swept_columns(pd.read_csv(out / "results.csv"))
    if kind == "sweep":
        assert {"arch.buffer.bytes", "arch.dram.bandwidth_gib_s"} <= set(swept)
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"JS error: {exc}"))
    page.on("console", lambda msg: errors.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None)
    requests: list[str] = []
    page.on("request", lambda req: requests.append(req.url) if not req.url.startswith(("file:", "data:")) else None)
    page.goto((out / "report.html").resolve().as_uri())
    page.wait_for_load_state("load")
    assert not errors, errors
    assert not requests, f"the page fetched from the network: {requests[:3]}"
    imgs = page.eval_on_selector_all("img", "els => els.map(e => [e.alt, e.complete, e.naturalWidth])")
    assert imgs, "no images in the report"
    broken = [alt for alt, complete, w in imgs if not complete or w == 0]
    assert not broken, f"broken images: {broken}"
    tables = page.eval_on_selector_all(
        "table", "ts => ts.map(t => [t.id, Array.from(t.tHead.rows[0].cells).map(c => c.textContent)])")
    assert tables
    names = [t for t, _ in tables]
    if kind == "sweep":
        assert "pareto-table" in names
        assert page.locator("#panel-select option").count() == 8  # 2 workloads x 2 lengths x 2 batches
    for tid, headers in tables:
        missing = [c for c in swept if c not in headers]
        assert not missing, f"table {tid} lacks the swept columns {missing}"
    # sorting: click latency_s in the all-results table, values come out ascending
    col = tables[names.index("all-table")][1].index("latency_s")
    page.locator("#all-table th").nth(col).click()
    vals = page.eval_on_selector_all(f"#all-table tbody tr td:nth-child({col + 1})",
                                     "tds => tds.map(td => parseFloat(td.dataset.v))")
    assert vals == sorted(vals)
    # filtering: typing an accelerator name hides the other accelerators' rows
    page.fill("input[data-table='all-table']", "fusemax")
    shown = page.eval_on_selector_all("#all-table tbody tr", "rs => rs.filter(r => r.style.display !== 'none').length")
    total = page.locator("#all-table tbody tr").count()
    assert 0 < shown < total
    page.fill("input[data-table='all-table']", "")
    assert page.locator("details").count() == (1 if (out / "spec.json").exists() else 0)
    page.screenshot(path=str(out / "report.png"), full_page=True)
    assert not errors, errors
    page.close()
