"""The report as a reader sees it: report.md rendered to HTML with a Markdown library and
its first screen photographed by headless Chromium. The first screen holds the title, the
answer and the claim table; the headline figure follows, before any dataset's section."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from test_report import STAGE, argv, write_run

markdown = pytest.importorskip("markdown", reason="the `markdown` library is not installed")

CHROMIUM = next(
    (shutil.which(n) for n in ("chromium", "chromium-browser") if shutil.which(n)), None
)
WIDTH, HEIGHT = 1280, 900  # one laptop screen
STYLE = (
    "body{font-family:sans-serif;max-width:1200px;margin:16px auto;font-size:14px}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 6px;"
    "vertical-align:top}img{max-width:100%}"
)


def render(md_path: Path) -> Path:
    """report.md as report.html beside it (so its relative figure links resolve)."""
    body = markdown.markdown(md_path.read_text(encoding="utf-8"), extensions=["tables"])
    html = md_path.with_suffix(".html")
    html.write_text(
        f"<!doctype html><meta charset='utf-8'><style>{STYLE}</style>{body}", encoding="utf-8"
    )
    return html


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    paths = write_run(tmp_path_factory.mktemp("screen"), fail=False)
    assert STAGE.main(argv(paths)) == 0
    return paths, render(paths["out"])


def test_the_html_opens_with_the_claim_table_and_the_headline_figure(rendered):
    _, html = rendered
    text = html.read_text(encoding="utf-8")
    first_h2 = text.index("<h2>")
    assert text[first_h2:].startswith("<h2>The claims on this run</h2>")
    table = text.index("<table>", first_h2)
    assert table < text.index("<h2>", first_h2 + 1)  # the table inside the first section
    rows = re.findall(r"<tr>\s*<td>(\d)\. ", text[table : text.index("</table>", table)])
    assert rows == ["1", "2", "3", "4", "5"]
    headline = text.index('src="figures/headline.png"')
    assert headline < text.index("<h2>topics_c5 ")


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_first_screen_screenshot(rendered, tmp_path):
    """Headless Chromium photographs the first screen; the picture is not blank. The PNG
    stays in the test's folder for a reader to look at (pytest --basetemp)."""
    import matplotlib.image as mpimg

    _, html = rendered
    shot = tmp_path / "first_screen.png"
    subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--screenshot={shot}", f"--window-size={WIDTH},{HEIGHT}", html.as_uri()],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    image = mpimg.imread(shot)
    assert image.shape[:2] == (HEIGHT, WIDTH)
    assert image[..., :3].std() > 0.05  # text and a table, not an empty page
