"""Stage `pretrain`: contrastive pre-training of one (dataset, K, seed) run, resumable.

With `<dataset>.train.nproc_per_node: N > 1` the stage re-executes itself under
`python -m torch.distributed.run --standalone --nproc_per_node N` (one node, N processes);
launched by torchrun already (WORLD_SIZE set, e.g. several nodes), it runs as it is.

Under `dvc repro` it takes no arguments: the instance comes from DVC_STAGE
(`pretrain@<dataset>-<K>-<seed>`, `pretrain-lr@<dataset>-<K>-<seed>-<lr>`) and the paths
from surrogap.core.schema. By hand: `--dataset circle --k 4 --seed 0 --data
data/prepared/circle/s0 --out data/pretrain/circle/k4/s0 --checkpoints
data/checkpoints/circle/k4/s0` (and `--lr` for an lr of the grid).
"""

import os
import sys
from pathlib import Path

from surrogap.core import stage
from surrogap.core.config import SEED_MAX
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
    p.add_argument("--seed", type=stage.integer(0, "seed", SEED_MAX))
    p.add_argument(
        "--lr", type=stage.positive_number("lr"), help="an lr of the grid (default: train.lr)"
    )
    p.add_argument("--data", type=Path, help="the prepared dataset folder")
    p.add_argument(
        "--out",
        type=stage.output_path(folder=True),
        help="output folder (model.pt, trajectory.csv, live/)",
    )
    p.add_argument(
        "--checkpoints",
        type=Path,
        help="the run's resumable checkpoint folder (kept until DVC records the run's output)",
    )

    def body(args) -> None:
        params = stage.instance_params(
            p, args, "pretrain", ("k", "seed", "data", "out", "checkpoints"), ("lr",)
        )
        nproc = pretrain.train_config(params, args.dataset).nproc_per_node
        if nproc > 1 and "WORLD_SIZE" not in os.environ:
            sys.stdout.flush()
            sys.stderr.flush()
            cmd = relaunch_command(nproc, argv)
            os.execv(cmd[0], cmd)  # never returns
        pretrain.run(
            params,
            args.dataset,
            args.k,
            args.seed,
            args.data,
            args.out,
            args.checkpoints,
            lr=args.lr,
        )

    return stage.run("pretrain", p, body, argv)


if __name__ == "__main__":
    sys.exit(main())
