"""`surrogap doctor`: checks the install, one line per finding, each problem with its fix.

torch and torchvision must be a pair (torchvision 0.(m + 15) for torch 2.m) of the same
build (both CPU, or both for the same CUDA version), and torchvision must load (a
mismatched pair fails with "operator torchvision::nms does not exist"); dvc and git on
PATH; dvc within the range pyproject.toml allows, with every private entry `surrogap sweep`
uses (surrogap.ops.dvcapi); params.yaml (in the current folder) must parse. A CUDA build of
torch on a machine without a GPU is a note (its CUDA libraries are unused there), pointing
to the README's CPU install line. Exit 0 when every check passes (notes included), 1
otherwise.
"""

from __future__ import annotations

import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from surrogap.core.errors import UserError

CPU_INDEX = "https://download.pytorch.org/whl/cpu"


@dataclass(frozen=True)
class Finding:
    ok: bool
    text: str
    note: bool = False  # worth knowing, not a problem (ok stays True)

    def line(self) -> str:
        return f"{'note' if self.note else 'ok' if self.ok else 'problem'}: {self.text}"


def _minor(version: str) -> str | None:
    m = re.match(r"(\d+)\.(\d+)", version)
    return f"{m.group(1)}.{m.group(2)}" if m else None


def _cuda(value: str | None) -> str | None:
    """A CUDA version as "12.8": torch writes "12.8", torchvision may write 12080."""
    if not value:
        return None
    text = str(value)
    if text.isdigit() and len(text) >= 4:
        n = int(text)
        return f"{n // 1000}.{(n % 1000) // 10}"
    return _minor(text) or text


def _build(cuda: str | None) -> str:
    return f"CUDA {cuda} build" if cuda else "CPU build"


def check_torch_pair(
    torch_version: str,
    torchvision_version: str | None,
    torch_cuda: str | None,
    torchvision_cuda: str | None,
    import_error: str | None = None,
) -> list[Finding]:
    """The decision: findings for the given versions and CUDA builds (torch.version.cuda,
    torchvision.version.cuda; None for a CPU build) and the error importing torchvision
    raised, if any."""
    from surrogap.models.vision import torchvision_pair

    a_cuda, b_cuda = _cuda(torch_cuda), _cuda(torchvision_cuda)
    out = [Finding(True, f"torch {torch_version} ({_build(a_cuda)})")]
    want = torchvision_pair(torch_version)
    index = CPU_INDEX if a_cuda is None else f"{CPU_INDEX[:-3]}cu{a_cuda.replace('.', '')}"
    fix = (
        f'pip install "torchvision=={want}.*" --index-url {index}'
        if want
        else "pip install the torchvision release that pytorch.org pairs with this torch"
    )
    if torchvision_version is None:
        return [*out, Finding(False, f"torchvision is not installed; fix: {fix}")]
    tv = f"torchvision {torchvision_version}"
    if want is not None and _minor(torchvision_version) != want:
        problem = f"{tv} does not pair with torch {torch_version} (it needs torchvision {want}.x)"
    elif a_cuda != b_cuda:
        problem = f"torch is a {_build(a_cuda)} but {tv} a {_build(b_cuda)}"
    else:
        problem = None
    if problem is None:
        out.append(Finding(True, f"{tv} pairs with it"))
    else:
        out.append(Finding(False, f"{problem}; fix: {fix}"))
    if import_error is not None:
        out.append(Finding(False, f"torchvision does not load: {import_error}; fix: {fix}"))
    return out


def _installed_torch() -> list[Finding]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        import torch
    except Exception as exc:  # a broken torch is what this command is for
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return [Finding(False, f"torch does not import: {first}; fix: pip install torch")]
    try:
        tv_version = version("torchvision")
    except PackageNotFoundError:
        tv_version = None
    tv_cuda, error = None, None
    if tv_version is not None:
        try:
            import torchvision
            import torchvision.ops  # registers the C++ operators, nms among them

            tv_cuda = torchvision.version.cuda
            tv_version = torchvision.__version__
        except (ImportError, RuntimeError, OSError, AttributeError) as exc:
            error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            tv_cuda = "unknown" if "+cu" in tv_version else None
    return check_torch_pair(torch.__version__, tv_version, torch.version.cuda, tv_cuda, error)


def check_cuda_without_gpu(torch_version: str, torch_cuda: str | None, gpus: int) -> Finding | None:
    """A note for a CUDA build of torch where no GPU is visible (None otherwise): the
    README's CPU line installs the same torch without its CUDA libraries."""
    from surrogap.models.vision import torchvision_pair

    cuda = _cuda(torch_cuda)
    if cuda is None or gpus > 0:
        return None
    base = torch_version.split("+")[0]
    pair = torchvision_pair(torch_version)
    vision = f' "torchvision=={pair}.*"' if pair else " torchvision"
    return Finding(
        True,
        f"torch {torch_version} is a CUDA {cuda} build but no GPU is visible: it runs on "
        "the CPU, and its CUDA libraries (3.2 GB measured) are unused here; a CPU-only "
        'install, as the README\'s "On a machine without an NVIDIA GPU" says: '
        f"pip install torch=={base}{vision} --index-url {CPU_INDEX}",
        note=True,
    )


def _cuda_without_gpu() -> list[Finding]:
    try:
        import torch

        gpus = torch.cuda.device_count()
    except Exception:  # a torch that does not import is _installed_torch's finding
        return []
    found = check_cuda_without_gpu(torch.__version__, torch.version.cuda, gpus)
    return [found] if found else []


def check_dvc(version: str | None, spec: str, missing: list[str]) -> Finding:
    """The installed DVC (None: not importable) against the range pyproject.toml allows
    (`spec`, e.g. '>=3.63,<4') and the private entries `surrogap sweep` uses that it lacks."""
    from surrogap.ops import dvcapi

    fix = f'pip install "dvc{spec}"' if spec else "pip install -e ."
    if version is None:
        return Finding(False, f"the dvc package does not import; fix: {fix}")
    if spec and not dvcapi.in_range(version, spec):
        return Finding(
            False,
            f"dvc {version} is outside the range surrogap is tested with (dvc{spec}): "
            f"`surrogap sweep` drives DVC's private API; fix: {fix}",
        )
    if missing:
        return Finding(
            False,
            f"dvc {version} lacks what `surrogap sweep` uses: {'; '.join(missing)}; fix: {fix}",
        )
    return Finding(True, f"dvc {version} (tested range dvc{spec or ' unknown'})")


def _dvc_version() -> list[Finding]:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    from surrogap.ops import dvcapi

    try:
        version = installed("dvc")
    except PackageNotFoundError:
        version = None
    missing = dvcapi.missing() if version is not None else []
    return [check_dvc(version, dvcapi.requirement(), missing)]


def _tool(name: str, fix: str) -> Finding:
    path = shutil.which(name)
    if path:
        return Finding(True, f"{name} at {path}")
    beside = Path(sys.executable).parent
    if shutil.which(name, path=str(beside)):
        return Finding(
            False,
            f"{name} is in {beside} but that folder is not on PATH; fix: activate the virtual "
            f"environment (. {beside}/activate)",
        )
    return Finding(False, f"{name} is not on PATH; fix: {fix}")


def _params(path: Path) -> Finding:
    from surrogap.core.config import check_top_level, load_params

    if not path.exists() and not path.is_symlink():
        return Finding(False, f"no {path} here; fix: run `surrogap doctor` in the project's root")
    try:
        check_top_level(load_params(path))
    except UserError as exc:
        first = str(exc).splitlines()[0]
        return Finding(False, f"{path} does not parse: {first}")
    return Finding(True, f"{path} parses")


def _dvc_lock(root: Path) -> Finding:
    from surrogap.core import dvclock

    try:
        stages = dvclock.read(root)
    except UserError as exc:
        return Finding(False, str(exc).replace("; recover with", "; fix:", 1))
    if stages is None:
        return Finding(True, "no dvc.lock yet (nothing recorded)")
    return Finding(True, f"dvc.lock parses ({len(stages)} stages recorded)")


# the folders DVC hashes (stage deps and outs of dvc.yaml); data/checkpoints/ is in .dvcignore
HASHED = ("data", "src", "stages", "reports")


def _special_files(root: Path) -> Finding:
    from surrogap.core import io

    found = [
        (entry, kind)
        for folder in HASHED
        for entry, kind in io.special_files(root / folder)
        if (root / "data" / "checkpoints") not in entry.parents
    ]
    if found:
        shown = ", ".join(
            f"{str(e.relative_to(root))!r} ({kind[2:] if kind.startswith('a ') else kind})"
            for e, kind in found[:3]
        )
        return Finding(
            False,
            f"{len(found)} FIFO, device or socket in folders DVC hashes: {shown}; DVC waits for "
            "ever on them (`dvc status` and `dvc repro` hang); fix: remove them",
        )
    return Finding(True, f"no FIFO, device or socket under {', '.join(HASHED)}")


def findings(params: str | Path = "params.yaml") -> list[Finding]:
    root = Path(params).absolute().parent
    return [
        *_installed_torch(),
        *_cuda_without_gpu(),
        _tool("dvc", "pip install -e . (the project depends on dvc)"),
        *_dvc_version(),
        _tool("git", "install git (e.g. apt-get install git)"),
        _dvc_lock(root),
        _special_files(root),
        _params(Path(params)),
    ]


def add_subparser(sub) -> None:
    """`surrogap doctor` in the `surrogap` command line."""
    p = sub.add_parser(
        "doctor",
        help="check the install (torch/torchvision pair, dvc, git, params.yaml), with fixes",
        description="One line per check; each problem says its fix. Exit 0 when all pass.",
    )
    p.add_argument("--params", default="params.yaml", help="the params file to parse")
    p.set_defaults(func=run_command)


def run_command(args) -> int:
    found = findings(args.params)
    for f in found:
        print(f.line())
    return 0 if all(f.ok for f in found) else 1
