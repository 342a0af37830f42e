"""The report of a recorded run, rendered by headless Chromium: the verdict table and every
plot are there with a non-zero size, and the screenshot is a real page (kept under
test-artifacts/ for humans). Skips without Chromium locally; fails without it in CI."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from junitparser import Failure, JUnitXml, Skipped

from chaos.report import HTML_FILE, JUNIT_FILE, write_reports

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
RECORDED = ROOT / "tests" / "data" / "recorded_run"
ARTIFACTS = ROOT / "test-artifacts" / "report_browser"
BROWSER_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
)
# Injected into a copy of the report (the report itself has no scripts): after every image
# has loaded, write each element's rendered size into the DOM for --dump-dom to show.
MEASURE = """<script>
window.addEventListener("load", () => {
  const sizes = [...document.querySelectorAll("img, svg")].map((el) => {
    const box = el.getBoundingClientRect();
    return [el.tagName.toLowerCase(), el.getAttribute("alt") || "", Math.round(box.width),
            Math.round(box.height), el.naturalWidth || 0];
  });
  const table = document.getElementById("verdict-table").getBoundingClientRect();
  const out = document.createElement("pre");
  out.id = "measured";
  out.textContent = JSON.stringify({images: sizes, table: [table.width, table.height]});
  document.body.appendChild(out);
});
</script>"""


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    reason = "chromium is not installed (apt-get install --no-install-recommends chromium)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


def run_browser(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile.mkdir(parents=True)
    return subprocess.run(
        [binary, *BROWSER_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    run_dir = tmp_path_factory.mktemp("browser") / "recorded_run"
    shutil.copytree(RECORDED, run_dir)
    journal = json.loads((run_dir / "journal.json").read_text())
    return write_reports(run_dir, journal)


def test_chromium_renders_verdict_table_and_plots(
    rendered: dict[str, Path], tmp_path: Path
) -> None:
    binary = chromium()
    page = rendered[HTML_FILE].read_text(encoding="utf-8")
    measured_page = tmp_path / "measured.html"
    measured_page.write_text(page.replace("</body>", MEASURE + "</body>"), encoding="utf-8")
    done = run_browser(
        binary,
        tmp_path / "profile-dom",
        "--window-size=1400,3000",
        "--virtual-time-budget=10000",
        "--dump-dom",
        measured_page.as_uri(),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    assert 'id="verdict-table"' in dom
    assert re.search(r'<tr class="fail">.*?fills_within_band', dom, re.DOTALL)
    assert re.search(r'<tr class="unknown"><td class="outcome">UNKNOWN</td>.*?recovery_within_rto',
                     dom, re.DOTALL)  # fmt: skip
    match = re.search(r'<pre id="measured">(.*?)</pre>', dom, re.DOTALL)
    assert match, "the page's load event never fired"
    measured = json.loads(match.group(1).replace("&quot;", '"'))
    assert measured["table"][0] > 600 and measured["table"][1] > 100
    images = measured["images"]
    assert len(images) == 5
    for tag, alt, width, height, natural in images:
        assert width > 300 and height > 100 and natural > 300, (tag, alt, width, height)


def test_chromium_screenshot_is_a_real_page(rendered: dict[str, Path], tmp_path: Path) -> None:
    binary = chromium()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "recorded_run.png"
    shot.unlink(missing_ok=True)
    done = run_browser(
        binary,
        tmp_path / "profile-shot",
        f"--screenshot={shot}",
        "--window-size=1400,3000",
        "--virtual-time-budget=10000",
        rendered[HTML_FILE].as_uri(),
    )
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    assert shot.stat().st_size > 50_000
    from matplotlib.image import imread

    pixels = (imread(str(shot))[:, :, :3] * 255).round().astype("uint8")
    assert pixels.shape[:2] == (3000, 1400)
    colours = {tuple(p) for p in pixels[::4, ::4].reshape(-1, 3).tolist()}
    assert len(colours) > 200, f"only {len(colours)} colours: a blank or broken page"
    # the verdict table's red (FAIL), green (PASS) and amber (UNKNOWN) cells are on screen
    assert (0xC5, 0x22, 0x1F) in colours and (0x1E, 0x8E, 0x3E) in colours
    assert (0xB0, 0x60, 0x00) in colours


def test_failing_run_junit_is_read_by_a_junit_parser(rendered: dict[str, Path]) -> None:
    suite = next(iter(JUnitXml.fromfile(str(rendered[JUNIT_FILE]))))
    failures = {
        case.name: result.text
        for case in suite
        for result in case.result
        if isinstance(result, Failure)
    }
    assert set(failures) == {"fills_within_band", "sequence_integrity"}
    skipped = {case.name for case in suite for result in case.result if isinstance(result, Skipped)}
    assert skipped == {"recovery_within_rto"}
    assert "fill 6.5% above the true price while post_only" in failures["fills_within_band"]
