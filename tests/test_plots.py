"""`dvc plots show`: an offline page (no remote URL, network forbidden by its CSP) with one
panel per dataset, each K curve averaged over seeds.

Run on a temporary copy of the repository's dvc.yaml, .dvc/config and plots/ with a small
results.csv of two datasets of different C and two seeds. Where chromium is installed, the
page is also rendered headless (no network) and its panels counted.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DVC = Path(sys.executable).with_name("dvc")
DATASETS = {"alpha": 5, "beta": 12}  # name -> C
KS = (1, 4, 16)
SEEDS = (0, 1)
URL = re.compile(r"https?://", re.IGNORECASE)
SCRIPT = re.compile(r"<script\b[^>]*>(.*?)</script>", re.DOTALL | re.IGNORECASE)


def _results(path: Path) -> None:
    """A results.csv with the columns the plots read; values differ per dataset and seed."""
    fields = ["dataset", "kind", "classes", "k", "seed", "contrastive_loss", "supervised_loss"]
    fields += ["mean_acc", "linear_acc", "bao_lower", "bao_upper"]
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        for (name, c), k, seed in ((d, k, s) for d in DATASETS.items() for k in KS for s in SEEDS):
            loss = 0.1 * c + 0.01 * seed
            w.writerow(
                {"dataset": name, "kind": "circle", "classes": c, "k": k, "seed": seed}
                | {"contrastive_loss": loss * k, "supervised_loss": loss + 1}
                | {"mean_acc": 0.5 + 0.01 * seed, "linear_acc": 0.6, "bao_lower": loss}
                | {"bao_upper": loss + 3}
            )


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    """The index.html `dvc plots show` writes in a copy of the repository's plot setup."""
    if not DVC.exists():
        pytest.skip("dvc is not installed beside this Python")
    repo = tmp_path_factory.mktemp("plots")
    shutil.copy(ROOT / "dvc.yaml", repo / "dvc.yaml")
    shutil.copytree(ROOT / "plots", repo / "plots")
    # its own params (never the working params.yaml): the lists dvc.yaml's stages expand
    (repo / "params.yaml").write_text(
        f"dataset: {list(DATASETS)}\nk: {list(KS)}\nseed: [0]\nlr: []\n"
    )
    (repo / ".dvc").mkdir()
    text = (ROOT / ".dvc" / "config").read_text()
    assert "[core]" in text
    (repo / ".dvc" / "config").write_text(text.replace("[core]", "[core]\n    no_scm = true", 1))
    (repo / "reports").mkdir()
    _results(repo / "reports" / "results.csv")
    done = subprocess.run(
        [str(DVC), "plots", "show", "-o", "out"], cwd=repo, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return repo / "out" / "index.html"


def _specs(html: str) -> list[dict]:
    return [
        json.loads(m.group(1))
        for m in re.finditer(r"var spec = (\{.*?\});\s*vegaEmbed", html, re.DOTALL)
    ]


def test_the_page_loads_nothing_from_the_network(page):
    html = page.read_text(encoding="utf-8")
    assert not re.search(r"<script\b[^>]*\bsrc\s*=", html, re.IGNORECASE)  # all inline
    assert not re.search(r"<link\b|@import|url\(\s*['\"]?https?:", html, re.IGNORECASE)
    assert not re.search(r"(src|href)\s*=\s*['\"]?\s*https?:", html, re.IGNORECASE)
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', html).group(1)
    assert "default-src 'none'" in csp and "connect-src 'none'" in csp
    # URLs occur only as strings inside the three pinned libraries (namespaces, an editor
    # link): everything DVC wrote (the specs, the divs) names none
    libraries = [m for m in SCRIPT.finditer(html) if m.group(1).lstrip().startswith("/* vega")]
    assert len(libraries) == 3
    rest = html
    for m in libraries:
        rest = rest.replace(m.group(0), "")
    assert not URL.search(rest), URL.search(rest)


def test_one_panel_per_dataset_averaged_over_seeds(page):
    specs = [s for s in _specs(page.read_text(encoding="utf-8")) if s]  # {}: no figures here
    assert len(specs) == 2  # losses, accuracies
    for spec in specs:
        assert spec["facet"]["field"] == "panel"
        assert spec["resolve"]["scale"]["y"] == "independent"
        rows = spec["data"]["values"]
        assert {r["dataset"] for r in rows} == set(DATASETS)
        (agg,) = [t for t in spec["transform"] if "aggregate" in t]
        assert "seed" not in agg["groupby"] and "K" in agg["groupby"]  # seeds averaged
        assert {"panel", "field", "rev"} <= set(agg["groupby"])


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed")
def test_the_page_renders_offline_in_a_headless_browser(page, tmp_path):
    done = subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--proxy-server=127.0.0.1:9",  # any network access would fail
            "--virtual-time-budget=10000",
            f"--user-data-dir={tmp_path}",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    titles = re.findall(r"<text[^>]*>([^<]*\(C = \d+\))</text>", done.stdout)
    expected = sorted(f"{name} (C = {c})" for name, c in DATASETS.items())
    assert sorted(titles) == sorted(expected * 2), done.stderr[-2000:]  # one per plot


def test_the_committed_page_carries_the_pinned_releases():
    """plots/page.html was written by tools/make_plots_page.py from its pinned releases:
    change a pin without rebuilding the page and this fails."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "make_plots_page", ROOT / "tools" / "make_plots_page.py"
    )
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    html = (ROOT / "plots" / "page.html").read_text(encoding="utf-8")
    inlined = re.findall(r"<script>/\* ([\w-]+@[\d.]+) \*/", html)
    assert inlined == [f"{name}@{version}" for name, version, *_ in tool.PACKAGES]
    assert "{plot_divs}" in html and "{scripts}" not in html  # DVC's CDN tags have no place
