"""The smoke run's results/report.html in a real browser (headless Chromium): every figure loads, no page width is
exceeded, the verdict table is there. A full-page screenshot is kept as an artefact: under the test's tmp folder,
and copied into $SOFTMAX_MI_ARTEFACTS when that is set.

Chromium is driven without Python packages: a copy of the page gets a probe script that, once the page has loaded,
writes its measurements into the DOM as JSON, and `chromium --headless --dump-dom` prints that DOM. Skipped, saying
why, where no Chromium is installed (Debian: `apt-get install chromium`; .ci/run does that when it runs as root)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
WIDTHS = (1280, 800)  # a laptop window, and a narrow one (half a screen)
MIN_SCALE = 0.75  # at 1280 px every figure is shown at ≥ 75 % of its pixel width (8 pt text stays ≥ 10 px high)

PROBE = """<script>
window.addEventListener("load", () => {
  const page = document.documentElement;
  const wider = [...document.body.querySelectorAll("*")]
    .filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5)
    .map(e => e.tagName.toLowerCase() + ": " + (e.textContent || e.alt || "").trim().slice(0, 60));
  const heading = [...document.querySelectorAll("h2")].find(h => h.textContent.trim() === "Verdicts");
  let table = heading && heading.nextElementSibling;
  table = table && table.tagName === "TABLE" ? table : null;
  const result = {
    viewport: window.innerWidth,
    scroll_width: page.scrollWidth,
    scroll_height: page.scrollHeight,
    images: document.images.length,
    broken: [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt),
    sizes: [...document.images].map(i => [i.alt, i.naturalWidth, Math.round(i.getBoundingClientRect().width)]),
    wider: wider.slice(0, 5),
    verdict_head: table ? [...table.querySelectorAll("th")].map(th => th.textContent) : null,
    verdict_rows: table ? table.querySelectorAll("tbody tr").length : 0,
  };
  const out = document.createElement("pre");
  out.id = "softmax-mi-probe";
  out.textContent = JSON.stringify(result);
  document.body.appendChild(out);
});
</script>"""


@pytest.fixture(scope="session")
def browser() -> str:
    """The Chromium executable ($SOFTMAX_MI_CHROMIUM, else the first of BROWSERS on PATH); skips when none (before
    the smoke run is asked for: the test names this fixture first)."""
    found = os.environ.get("SOFTMAX_MI_CHROMIUM") or next(filter(None, map(shutil.which, BROWSERS)), None)
    if not found:
        pytest.skip("Chromium not installed (Debian: `apt-get install chromium`; .ci/run installs it when root): "
                    "the report was not rendered in a browser")
    return found


def chromium(executable: str, profile: Path, width: int, height: int, *args: str) -> str:
    command = [executable, "--headless", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
               f"--user-data-dir={profile}", f"--window-size={width},{height}", "--virtual-time-budget=10000",
               *(["--no-sandbox"] if os.geteuid() == 0 else []), *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-2000:]}"
    return done.stdout


def measure(executable: str, page: Path, profile: Path, width: int) -> dict:
    dom = chromium(executable, profile, width, 900, "--dump-dom", page.as_uri())
    found = re.search(r'<pre id="softmax-mi-probe">(.*?)</pre>', dom, re.S)
    assert found, f"the probe wrote nothing at width {width}: did the page load? DOM starts {dom[:300]!r}"
    return json.loads(found.group(1).replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">"))


def test_report_in_headless_chromium(browser, smoke_run, tmp_path):
    executable = browser
    report = smoke_run / "results" / "report.html"
    text = report.read_text()
    page = tmp_path / "report_probe.html"  # beside nothing: the report embeds its figures, so it renders alone
    page.write_text(text.replace("</body>", PROBE + "</body>", 1))
    expected_images = text.count("<img ")
    assert expected_images >= 3, f"{report}: only {expected_images} figures"

    results = {}
    for width in WIDTHS:
        result = results[width] = measure(executable, page, tmp_path / "profile", width)
        where = f"{report} at {width} px"
        assert result["viewport"] == width, f"{where}: the browser's viewport is {result['viewport']} px"
        assert result["images"] == expected_images, f"{where}: {result['images']} of {expected_images} images in DOM"
        assert not result["broken"], f"{where}: images not loaded: {result['broken']}"
        assert result["scroll_width"] <= width, (f"{where}: page {result['scroll_width']} px wide; elements past the "
                                                 f"right edge: {result['wider']}")
        assert result["verdict_head"] == ["claim", "statement", "verdict", "reason"], f"{where}: no verdict table"
        assert result["verdict_rows"] >= 4, f"{where}: {result['verdict_rows']} verdict rows"
    for alt, natural, shown in results[WIDTHS[0]]["sizes"]:  # a figure drawn for the page: not shrunk to illegible
        assert shown >= MIN_SCALE * natural, (f"{report} at {WIDTHS[0]} px: {alt!r} is {natural} px wide, shown at "
                                              f"{shown} px: its text shrinks below {MIN_SCALE:.0%} (draw it narrower)")

    screenshot = tmp_path / "report.png"  # the whole page at 1280 px: a window as tall as the page
    height = min(results[WIDTHS[0]]["scroll_height"], 16000)
    chromium(executable, tmp_path / "profile", WIDTHS[0], height, f"--screenshot={screenshot}", report.as_uri())
    assert screenshot.stat().st_size > 10_000, f"{screenshot}: an empty screenshot"
    if os.environ.get("SOFTMAX_MI_ARTEFACTS"):
        artefacts = Path(os.environ["SOFTMAX_MI_ARTEFACTS"])
        artefacts.mkdir(parents=True, exist_ok=True)
        shutil.copy(screenshot, artefacts / "report_1280.png")
