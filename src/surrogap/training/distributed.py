"""torch.distributed for the pretrain stage: who am I, the process group, sharding.

A run is distributed when it is launched by torchrun (or anything that sets the same
environment): RANK, WORLD_SIZE and LOCAL_RANK (plus MASTER_ADDR/MASTER_PORT); WORLD_SIZE=1
under torchrun is a one-process group with DDP (a cheap check of the distributed path). The
backend is NCCL on GPUs and Gloo on CPUs; ``batch_size`` is the global batch B, each process
taking a contiguous shard of B / W anchors (docs/SCALING.md).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from surrogap.core.errors import UserError


@dataclass(frozen=True)
class DistEnv:
    """This process's place in the run: rank in [0, world_size), local_rank on its node;
    `launched`: started by torchrun (a process group and DDP even when world_size is 1)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    launched: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.launched


def from_env(env: dict | None = None) -> DistEnv:
    """The DistEnv described by RANK / WORLD_SIZE / LOCAL_RANK (single process when unset)."""
    env = os.environ if env is None else env
    if "WORLD_SIZE" not in env:
        return DistEnv()
    try:
        world = int(env["WORLD_SIZE"])
        rank = int(env.get("RANK", "0"))
        local = int(env.get("LOCAL_RANK", str(rank)))
    except ValueError:
        raise UserError(
            f"torch.distributed environment: RANK={env.get('RANK')!r}, WORLD_SIZE={env.get('WORLD_SIZE')!r}, "
            f"LOCAL_RANK={env.get('LOCAL_RANK')!r} must be integers"
        ) from None
    if world < 1 or not 0 <= rank < world or local < 0:
        raise UserError(
            f"torch.distributed environment: got RANK={rank}, WORLD_SIZE={world}, LOCAL_RANK={local}"
        )
    return DistEnv(rank, world, local, launched=True)


def per_process_batch(batch_size: int, world_size: int, where: str) -> int:
    """B / W, or one clear error when the global batch does not split evenly."""
    if batch_size % world_size:
        raise UserError(
            f"{where}.batch_size: got {batch_size}, allowed: a multiple of the {world_size} processes "
            "(batch_size is the global batch, split evenly across processes)"
        )
    return batch_size // world_size


def setup(denv: DistEnv, device: torch.device) -> None:
    """Join the process group (NCCL on cuda, Gloo otherwise) unless it is already up."""
    if not denv.active:
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)  # collectives (and broadcast_object_list) use it
    if dist.is_initialized():
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    kwargs = {"device_id": device} if device.type == "cuda" else {}
    dist.init_process_group(backend=backend, rank=denv.rank, world_size=denv.world_size, **kwargs)


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def barrier(denv: DistEnv) -> None:
    if denv.active and dist.is_initialized():
        dist.barrier()


def all_mean(t: torch.Tensor, denv: DistEnv) -> torch.Tensor:
    """The mean of `t` over processes (`t` itself when single-process); not differentiable."""
    if not denv.active:
        return t
    t = t.detach().clone()
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t / denv.world_size


def broadcast_object(obj, denv: DistEnv):
    """Rank 0's `obj` on every process."""
    if not denv.active:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def shard(batch: torch.Tensor, denv: DistEnv) -> torch.Tensor:
    """This process's contiguous share of a global batch (B,) -> (B / W,)."""
    b = batch.numel() // denv.world_size
    return batch[denv.rank * b : (denv.rank + 1) * b]
