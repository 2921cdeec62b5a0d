"""Writes params/paper-*.yaml, the full-scale presets, from one place.

Run from the repository root:  python tools/gen_presets.py
(the stage sections are copied from the current params.yaml; probe.repeats becomes 25).
"""

from pathlib import Path

import yaml


class Dumper(yaml.SafeDumper):
    """Block mappings, flow lists: [1, 4, 16]."""


Dumper.add_representer(
    list, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v, flow_style=True)
)


def y(obj) -> str:
    return yaml.dump(obj, Dumper=Dumper, sort_keys=False, default_flow_style=False, width=100)


stage = yaml.safe_load(Path("params.yaml").read_text())
stage = {k: stage[k] for k in ("extract", "probe", "theory", "evaluate", "report")}
stage["probe"] = {**stage["probe"], "repeats": 25}  # the paper: 25 pairings of the test split


# an editor's YAML language server checks each preset against params.schema.json (README)
SCHEMA_LINE = "# yaml-language-server: $schema=../params.schema.json\n"


def dump(path, header, top, sections):
    body = y(top) + "\n" + y(sections) + "\n" + y(stage)
    Path(path).write_text(SCHEMA_LINE + header.strip() + "\n" + body)


# ---------------------------------------------------------------- circle
def synth(kind):
    d = {"kind": kind, "classes": 100, "per_class": 1000}
    if kind == "norm":
        d["std"] = 1.0
    d.update({"val_fraction": 0.2, "test_fraction": 0.2, "seed": 0})
    return {
        "data": d,
        "encoder": {"name": "mlp", "widths": [256, 256, 256]},
        "train": {
            "optimizer": "adam",
            "lr": 0.01,
            "weight_decay": 0.01,
            "batch_size": 1024,
            "epochs": 300,
            "schedule": "plateau",
            "plateau_patience": 10,  # the official code's ReduceLROnPlateau
            "plateau_factor": 0.1,
            "eval_every": 10,
            "checkpoint_every": 10,
            "device": "auto",
            "precision": "fp32",
        },
    }


dump(
    "params/paper-circle.yaml",
    """
# The paper's synthetic grid (docs/PROTOCOL.md): circle, C = 100, 1000 points per class, MLP
# 2-256-256-256, Adam lr 0.01 weight decay 0.01, batch 1024, 300 epochs, plateau schedule
# with patience 10 and factor 0.1 (as the paper's official code),
# K in {1, 4, 16, 64, 256}, 8 seeds: 40 runs. A full params.yaml replacement:
#   cp params/paper-circle.yaml params.yaml && dvc repro
# Split: 60% train, 40% held out (20% val for the trajectory and model selection, 20% test).
# `norm` is ready too:  dvc exp run -S 'dataset=[circle,norm]'
# Deviation: the plateau schedule steps on the epoch's mean training loss, checked every
# epoch (this project's trainer); the official code's monitored quantity is not replicated.
""",
    {"dataset": ["circle"], "k": [1, 4, 16, 64, 256], "seed": list(range(8)), "lr": []},
    {"circle": synth("circle"), "norm": synth("norm")},
)

# ---------------------------------------------------------------- cifar
CIFAR_LRS = (0.03125, 0.0625, 0.09375)  # the official grid, times sqrt(batch size)


def cifar(kind, lr):
    return {
        "data": {"kind": kind, "download": True, "val_fraction": 0.1, "augment": True, "seed": 0},
        "encoder": {"name": "resnet18", "head": True, "hidden": 512, "out_dim": 128},
        "train": {
            "optimizer": "lars",
            "lr": lr,
            "lr_scaling": "sqrt",
            "lr_base_batch": 1,  # lr * sqrt(batch_size): 1024 -> 32 x lr
            "lars_eta": 0.001,
            "momentum": 0.9,
            "weight_decay": 1.0e-4,
            "batch_size": 1024,
            "epochs": 2000,
            "schedule": "cosine",
            "warmup_epochs": 10,
            "normalize": False,
            "temperature": 1.0,
            "eval_every": 10,
            "eval_mean_samples": 500,
            "checkpoint_every": 5,
            "device": "auto",
            "precision": "bf16",
            "nproc_per_node": 1,
        },
    }


for kind in ("cifar10", "cifar100"):
    dump(
        f"params/paper-{kind}.yaml",
        f"""
# The paper's {kind} grid (docs/PROTOCOL.md): ResNet-18 (CIFAR stem) + projection head, SimCLR
# augmentation; as the paper's official code: SGD momentum 0.9 with LARS (optimizer: lars),
# weight decay 1e-4, global batch 1024, 2000 epochs, cosine schedule with 10 warm-up epochs,
# and the learning-rate grid {{0.03125, 0.0625, 0.09375}} scaled by sqrt(batch size)
# (lr_scaling: sqrt, lr_base_batch: 1: 1024 gives 32 x lr; the lr used is written to
# model.pt, train_info.json and stderr): the section's train.lr and the extra entries of the
# list `lr` (runs k<K>-s<seed>-lr<lr>). bf16 mixed precision (needs a GPU: on a CPU the run
# refuses with one line), K in {{4, 16, 32, 64, 128, 512}}, 3 seeds. The select_lr stage
# keeps, per (C, K, seed), the run with the best validation accuracy (reports/selected.csv).
# 3 x 6 x 3 = 54 runs.
#   cp params/paper-{kind}.yaml params.yaml && dvc repro
# nproc_per_node stays 1: negatives come from each process's own batch, and K = 512 needs a
# per-process batch >= 513. Use the GPUs for runs side by side (docs/SCALING.md).
# Deviations from the official code that remain: LARC there, this project's LARS here (trust
# coefficient lars_eta 0.001, no clipping of the local lr: LARC's coefficient and clipping
# are not replicated); bf16 mixed precision, for speed on GPUs; the feature normalization
# and temperature (normalize: false, temperature: 1), K and the seeds are this project's
# choices, not checked against the official code.
""",
        {
            "dataset": [kind],
            "k": [4, 16, 32, 64, 128, 512],
            "seed": [0, 1, 2],
            "lr": list(CIFAR_LRS[1:]),
        },
        {kind: cifar(kind, CIFAR_LRS[0])},
    )

# ---------------------------------------------------------------- wiki3029
WIKI_LRS = (0.1, 0.3, 1.0)
WIKI_C = {500: 60, 1000: 30, 2000: 15, 3029: 10}  # epochs: about the same number of steps


def wiki(c, lr):
    return {
        "data": {
            "kind": "wiki3029",
            "download": True,
            "classes": None if c == 3029 else c,
            "val_fraction": 0.1,
            "test_fraction": 0.2,
            "min_freq": 5,
            "seed": 0,
        },
        "encoder": {"name": "bag", "dim": 256},
        "train": {
            "optimizer": "sgd",
            "lr": lr,
            "momentum": 0.9,
            "weight_decay": 0.0,
            "batch_size": 2048,
            "epochs": WIKI_C[c],
            "schedule": "cosine",
            "warmup_epochs": 1,
            "normalize": False,
            "temperature": 1.0,
            "eval_every": max(1, WIKI_C[c] // 10),
            "eval_mean_samples": 50,
            "checkpoint_every": max(1, WIKI_C[c] // 10),
            "device": "auto",
            "precision": "fp32",
            "nproc_per_node": 1,
        },
    }


sections = {("wiki3029" if c == 3029 else f"wiki3029_c{c}"): wiki(c, WIKI_LRS[0]) for c in WIKI_C}
dump(
    "params/paper-wiki3029.yaml",
    """
# The paper's Wiki-3029 grid (docs/PROTOCOL.md): fastText-style bag of embeddings (dim 256), SGD
# momentum 0.9, batch 2048, cosine schedule with warm-up, K in {8, 64, 256, 1024}, 3 seeds;
# the C sweep C in {500, 1000, 2000, 3029} as dataset sections (random class subsets, epochs
# scaled by 3029 / C so the number of steps stays comparable) crossed with the lr grid
# {0.1, 0.3, 1.0} (each section's train.lr and the list `lr`, runs k<K>-s<seed>-lr<lr>):
# 4 sections x 3 lr x 4 K x 3 seeds = 144 runs. The select_lr stage keeps, per (C, K, seed),
# the run with the best validation accuracy (reports/selected.csv).
#   cp params/paper-wiki3029.yaml params.yaml && dvc repro
# Only C = 3029:  dvc exp run -S 'dataset=[wiki3029]'
# nproc_per_node stays 1: K = 1024 needs a per-process batch >= 1025 (per-process negatives).
# Deviation: epochs, the lr grid and the schedule are this project's proposal, not taken from
# the paper's official code (which this preset was not checked against).
""",
    {
        "dataset": list(sections),
        "k": [8, 64, 256, 1024],
        "seed": [0, 1, 2],
        "lr": list(WIKI_LRS[1:]),
    },
    sections,
)
