"""Stage `pretrain`: contrastive pre-training of every seed of one (dataset, K) group,
each seed's run resumable, the seeds side by side in one process each (up to the cores;
SURROGAP_STAGE_JOBS caps it).

With `<dataset>.train.nproc_per_node: N > 1` the stage re-executes itself under
`python -m torch.distributed.run --standalone --nproc_per_node N` (one node, N processes:
torchrun must start the processes before any of them computes, so the stage becomes its
own launcher rather than asking for a second command); launched by torchrun already
(WORLD_SIZE set, e.g. several nodes), it runs as it is, the seeds one after another.

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
    p = stage.parser("pretrain", __doc__)
    p.add_argument("--dataset", help="a dataset section of params.yaml (default: DVC_STAGE's)")
    p.add_argument("--k", type=stage.integer(1, "k"), help="negatives per anchor")
    p.add_argument(
        "--seed",
        type=stage.integer(0, "seed", SEED_MAX),
        help="one seed (default: every seed of the params list `seed`)",
    )
    p.add_argument(
        "--lr", type=stage.positive_number("lr"), help="an lr of the grid (default: train.lr)"
    )
    p.add_argument("--data", type=Path, help="the prepared dataset's folder (s<seed> inside)")
    p.add_argument(
        "--out",
        type=stage.output_path(folder=True),
        help="the group's output folder: s<seed>/ with model.pt, trajectory.csv, live/",
    )
    p.add_argument(
        "--checkpoints",
        type=Path,
        help="the group's resumable checkpoint folder, s<seed>/ inside (kept until DVC "
        "records the output)",
    )

    def body(args) -> None:
        params = stage.instance_params(
            p, args, "pretrain", ("k", "data", "out", "checkpoints"), ("seed", "lr")
        )
        nproc = pretrain.train_config(params, args.dataset).nproc_per_node
        if nproc > 1 and "WORLD_SIZE" not in os.environ:
            sys.stdout.flush()
            sys.stderr.flush()
            cmd = relaunch_command(nproc, argv)
            os.execv(cmd[0], cmd)  # never returns
        pretrain.run_seeds(
            params,
            args.dataset,
            args.k,
            seeds(params) if args.seed is None else (args.seed,),
            args.data,
            args.out,
            args.checkpoints,
            lr=args.lr,
        )

    return stage.run("pretrain", p, body, argv)


if __name__ == "__main__":
    sys.exit(main())
