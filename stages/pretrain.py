"""Stage `pretrain`: contrastive pre-training of every seed of one (dataset, K) group,
each seed's run resumable, the seeds side by side in one process each (up to the cores;
SURROGAP_STAGE_JOBS caps it).

With `<dataset>.train.nproc_per_node: N > 1` the stage re-executes itself as
`python -m torch.distributed.run --standalone --nproc_per_node N stages/pretrain.py ...`
(torchrun, one node); kept rather than asking users for a torchrun `cmd`, because dvc.yaml's
`cmd` is one constant for every instance and N is a params value. Launched by torchrun
already (WORLD_SIZE set, e.g. several nodes: docs/SCALING.md), it runs as it is, the seeds
one after another.

Under `dvc repro` it takes no arguments: the instance comes from DVC_STAGE
(`pretrain@<dataset>-<K>`, `pretrain-lr@<dataset>-<K>-<lr>`) and the paths from
surrogap.core.schema. By hand: `--dataset circle --k 4 --data data/prepared/circle --out
data/pretrain/circle/k4 --checkpoints data/checkpoints/circle/k4` (every seed of the params
list `seed`; `--seed S` for one, and `--lr` for an lr of the grid).
"""

import os
import sys
from pathlib import Path

from surrogap.core import stage
from surrogap.core.config import SEED_MAX, seeds
from surrogap.pipeline import pretrain


def relaunch_command(nproc: int, argv: list[str]) -> list[str]:
    """The torchrun command line that runs this script with `argv` in `nproc` processes."""
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        str(Path(__file__).resolve()),
        *argv,
    ]


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)

    def seed_option(p) -> None:
        p.add_argument(
            "--seed",
            type=stage.integer(0, "seed", SEED_MAX),
            help="one seed (default: every seed of the params list `seed`)",
        )

    def body(job: stage.Job, args) -> None:
        s = pretrain.setup(job.params, job.dataset, job.lr)
        if s.train.nproc_per_node > 1 and "WORLD_SIZE" not in os.environ:
            sys.stdout.flush()
            sys.stderr.flush()
            cmd = relaunch_command(s.train.nproc_per_node, argv)
            os.execv(cmd[0], cmd)  # never returns
        chosen = seeds(job.params) if args.seed is None else (args.seed,)
        pretrain.run_seeds(s, job.k, chosen, *job.paths.values())

    return stage.matrix_stage("pretrain", __doc__, body, argv, seed_option)


if __name__ == "__main__":
    sys.exit(main())
