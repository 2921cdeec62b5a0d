"""Writes plots/page.html, the HTML page `dvc plots show` fills (``plots.html_template`` in
.dvc/config), with vega, vega-lite and vega-embed inlined so the page renders offline.

DVC's own page loads the three libraries from a CDN. This one carries them: the minified
builds of the pinned npm releases below, checked against their registry integrity
(sha512), so the page is the same bytes wherever it is made. It also sets a
Content-Security-Policy that forbids the page any network access (no remote script, style,
font or connection; images only from the page's own folder or data: URLs).

Run from the repository root (needs `npm` and the npm registry):

    python tools/make_plots_page.py           # fetch with `npm pack`, write plots/page.html
    python tools/make_plots_page.py --check   # exit 1 if plots/page.html differs
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

# (package, version, sha512 integrity of the npm tarball, file inside the tarball)
PACKAGES = (
    (
        "vega",
        "5.33.1",
        "1fArfVDUqVbb5z8n+/nVQb+VNBzx8svY6CrsyTK4Ujm4yrd9I1auoKxBAPXLCavY1LcrbHUskQbGUP8gXOzyQw==",
        "package/build/vega.min.js",
    ),
    (
        "vega-lite",
        "5.23.0",
        "l4J6+AWE3DIjvovEoHl2LdtCUkfm4zs8Xxx7INwZEAv+XVb6kR6vIN1gt3t2gN2gs/y4DYTs/RPoTeYAuEg6mA==",
        "package/build/vega-lite.min.js",
    ),
    (
        "vega-embed",
        "6.29.0",
        "PmlshTLtLFLgWtF/b23T1OwX53AugJ9RZ3qPE2c01VFAbgt3/GSNI/etzA/GzdrkceXFma+FDHNXUppKuM0U6Q==",
        "package/build/vega-embed.min.js",
    ),
)
OUT = Path("plots/page.html")

# 'unsafe-eval': vega compiles its expressions with the Function constructor.
CSP = (
    "default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'none'; font-src 'none'; form-action 'none'"
)

PAGE = """<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
{{refresh_tag}}
<title>surrogap: DVC plots</title>
<!-- Written by tools/make_plots_page.py; do not edit by hand. Inlined below (unmodified but for\nthe source-map comment):
{credits}
each under the BSD-3-Clause license, Copyright (c) the University of Washington
Interactive Data Lab. DVC fills the plot_divs placeholder in the body. -->
{scripts}
<style>
  body {{ font-family: sans-serif; margin: 1em; }}
  table {{ border-spacing: 15px; }}
  img {{ max-width: 100%; }}
</style>
</head>
<body>
{{plot_divs}}
</body>
</html>
"""


def fetch(package: str, version: str, integrity: str, folder: Path) -> Path:
    """`npm pack` one release into `folder`; refuse it unless its sha512 matches."""
    done = subprocess.run(
        ["npm", "pack", "--silent", f"{package}@{version}"],
        cwd=folder,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        sys.exit(f"npm pack {package}@{version} failed: {done.stderr.strip().splitlines()[-1:]}")
    tgz = folder / done.stdout.strip().splitlines()[-1]
    got = base64.b64encode(hashlib.sha512(tgz.read_bytes()).digest()).decode()
    if got != integrity:
        sys.exit(f"{tgz.name}: sha512 {got}, expected {integrity}: refused")
    return tgz


def script(tgz: Path, member: str) -> str:
    with tarfile.open(tgz) as tar:
        text = tar.extractfile(member).read().decode("utf-8")
    # the source-map comment names a file the page does not carry
    text = re.sub(r"\n//# sourceMappingURL=\S+\s*$", "\n", text)
    for bad in ("</script", "{plot_divs}", "{scripts}", "{refresh_tag}"):
        if bad in text:  # would end the inline script early, or be filled by DVC
            sys.exit(f"{tgz.name}:{member} holds {bad!r}: cannot be inlined")
    return text


def page() -> str:
    with tempfile.TemporaryDirectory() as tmp:
        scripts, credits = [], []
        for package, version, integrity, member in PACKAGES:
            tgz = fetch(package, version, integrity, Path(tmp))
            scripts.append(f"<script>/* {package}@{version} */\n{script(tgz, member)}\n</script>")
            credits.append(f"  {package}@{version} ({member.removeprefix('package/')})")
    return PAGE.format(csp=CSP, credits="\n".join(credits), scripts="\n".join(scripts))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true", help="compare with plots/page.html only")
    args = p.parse_args(argv)
    text = page()
    if args.check:
        same = OUT.is_file() and OUT.read_text(encoding="utf-8") == text
        print(f"{OUT}: {'up to date' if same else 'differs'}")
        return 0 if same else 1
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
