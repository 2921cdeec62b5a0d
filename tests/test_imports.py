"""Light paths stay light: each case runs its code in a fresh interpreter, then checks that
a heavy module was never imported (the estimators run without torch; building and stepping
an optimizer never loads torch._dynamo, whose import costs seconds)."""

from __future__ import annotations

import subprocess
import sys

import pytest

CASES = {
    "estimators without torch": (
        "import numpy as np; from surrogap.estimators import evaluation as e; "
        "z = np.random.default_rng(0).normal(size=(60, 3)); y = np.arange(60) % 3; "
        "e.mean_classifier(z, y, z, y, 3); e.contrastive_loss_estimate(z, y, 4, 2); "
        "e.linear_probe_points(z, y, z, y, z, y, 3)[0]",
        "torch",
    ),
    "optimizer without dynamo": (
        "import torch; from surrogap.training.optim import build_optimizer; "
        "m = torch.nn.Linear(3, 2); o = build_optimizer(m, 'adam', 0.1, 0.0, 0.9); "
        "m(torch.ones(2, 3)).sum().backward(); o.step(); o.zero_grad(); "
        "o.load_state_dict(o.state_dict())",
        "torch._dynamo",
    ),
}


@pytest.mark.parametrize(("code", "module"), CASES.values(), ids=list(CASES))
def test_the_code_never_imports_the_heavy_module(code, module):
    check = f"{code}; import sys; print({module!r} in sys.modules)"
    out = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_no_library_module_imports_the_cli():
    """The CLI sits on top: no module of the package imports `surrogap.cli` (at module level,
    inside a function or relatively: the import walk that checks the stage deps), so the
    library has no cycle through it."""
    from surrogap.core import codedeps

    cli = codedeps.module_file("surrogap.cli")
    offenders = [
        codedeps.module_name(path)
        for path in sorted(codedeps.PACKAGE_DIR.rglob("*.py"))
        if path != cli
        and "surrogap.cli"
        in codedeps.imported_names(
            path.read_text(), codedeps.module_name(path), path.name == "__init__.py"
        )
    ]
    assert not offenders, offenders
