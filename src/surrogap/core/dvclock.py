"""``dvc.lock``, DVC's record of the stages it ran, as surrogap reads it (the progress line,
the pretrain stage's completed checkpoint, `surrogap sweep`, `surrogap doctor`).

DVC rewrites the whole file after every stage, and not atomically: a `dvc repro` killed
while it writes leaves it cut short, and every later `dvc status` or `dvc repro` then fails
with DVC's ``'./dvc.lock' validation failed``. Every reader here says so in one line,
with the fix (`BROKEN_FIX`), instead of treating the file as empty.
"""

from __future__ import annotations

from pathlib import Path

from surrogap.core.errors import UserError

BROKEN_FIX = (
    "it was probably cut short by an interrupted dvc repro; recover with "
    "`git checkout dvc.lock && dvc repro` (stages that still match are skipped or restored "
    "from the run cache), or delete dvc.lock and run `dvc repro`"
)


def read(root: str | Path) -> dict | None:
    """The stages mapping of ``<root>/dvc.lock`` ({name: entry}); None when there is no
    dvc.lock; a one-line UserError naming the file and the fix when it is not valid YAML
    or not DVC's layout."""
    import yaml

    from surrogap.core.io import readable

    path = readable(Path(root) / "dvc.lock", "DVC's lock file")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise UserError(f"{str(path)!r} cannot be read ({reason}); {BROKEN_FIX}") from None
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # 0.3 s, not 2 s, on 8,000 lines
    try:
        data = yaml.load(text, Loader=loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise UserError(f"{str(path)!r} is not valid YAML{where}; {BROKEN_FIX}") from None
    if data is None:
        raise UserError(f"{str(path)!r} is empty; {BROKEN_FIX}")
    stages = data.get("stages") if isinstance(data, dict) else None
    if not isinstance(stages, dict) or not all(isinstance(e, dict) for e in stages.values()):
        raise UserError(f"{str(path)!r} is not DVC's lock file layout; {BROKEN_FIX}")
    return stages
