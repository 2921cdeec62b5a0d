"""The training layer: the trainer and its loop, losses, optimizers and schedules, distributed set-up, checkpoints, augmentation (used by the `pretrain` stage only)."""
