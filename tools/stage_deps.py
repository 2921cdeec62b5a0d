"""Prints, for every stage script, the code deps dvc.yaml must list (tests/test_deps.py
checks them): the files its imports reach, a folder where all of its files are reached.

Run from the repository root:  python tools/stage_deps.py
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from surrogap import codedeps  # noqa: E402

FOLDERS = ("src/surrogap/models", "src/surrogap/data")


def stage_deps(script: Path) -> list[str]:
    reached = {p.relative_to(ROOT).as_posix() for p in codedeps.reached([script])}
    folders = []
    for folder in FOLDERS:
        files = {p.relative_to(ROOT).as_posix() for p in (ROOT / folder).rglob("*.py")}
        if files <= reached:
            reached -= files
            folders.append(folder)
    first = script.relative_to(ROOT).as_posix()
    return [first, *sorted(reached - {first}), *folders]


if __name__ == "__main__":
    for script in sorted((ROOT / "stages").glob("*.py")):
        print(f"{script.stem}:")
        print("\n".join(f"  - {d}" for d in stage_deps(script)))
