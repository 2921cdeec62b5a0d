"""Prints, for every stage script, the code deps dvc.yaml must list (tests/test_deps.py
checks them): its script, the package's __init__.py, its own pipeline module, and every
layer folder its imports reach (surrogap.core.codedeps.stage_deps).

Run from the repository root:  python tools/stage_deps.py
With --write, dvc.yaml's code deps (the `stages/` and `src/` entries of each stage's deps)
are replaced by these lists in place; data deps, comments and order are kept.
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from surrogap.core import codedeps  # noqa: E402


def stage_deps(script: Path) -> list[str]:
    return [p.relative_to(ROOT).as_posix() for p in codedeps.stage_deps(script)]


CODE_DEP = re.compile(r"^(\s+)- (stages|src)/\S+\s*$")
SCRIPT = re.compile(r"python stages/(\w+)\.py")


def write(dvc_yaml: Path) -> bool:
    """Rewrite the code deps of every stage in `dvc_yaml`; True if anything changed."""
    lines = dvc_yaml.read_text().splitlines(keepends=True)
    out, script, i = [], None, 0
    while i < len(lines):
        line = lines[i]
        if re.match(r"^  \S", line):  # a new stage
            script = None
        m = SCRIPT.search(line)
        if m:
            script = ROOT / "stages" / f"{m.group(1)}.py"
        code = CODE_DEP.match(line)
        if code and script is not None:
            indent = code.group(1)
            while i < len(lines) and CODE_DEP.match(lines[i]):
                i += 1
            out.extend(f"{indent}- {d}\n" for d in stage_deps(script))
            continue
        out.append(line)
        i += 1
    text = "".join(out)
    changed = text != dvc_yaml.read_text()
    if changed:
        dvc_yaml.write_text(text)
    return changed


if __name__ == "__main__":
    if "--write" in sys.argv[1:]:
        changed = write(ROOT / "dvc.yaml")
        print("dvc.yaml: code deps " + ("rewritten" if changed else "already exact"))
        sys.exit(0)
    for script in sorted((ROOT / "stages").glob("*.py")):
        print(f"{script.stem}:")
        print("\n".join(f"  - {d}" for d in stage_deps(script)))
