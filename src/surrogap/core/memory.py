"""Sizes that params.yaml sets, checked against the memory this process may use before a
stage allocates them: a size too large is one line naming the params key, the bytes needed
and the bytes available, not a MemoryError (or the kernel's OOM killer) minutes later."""

from __future__ import annotations

import os
from pathlib import Path

from surrogap.core.errors import UserError


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def _cgroup_room() -> int | None:
    """What the cgroup (v2) still allows this process's group, where it sets a limit."""
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit == "max":
            return None
        used = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
        return max(int(limit) - used, 0)
    except (OSError, ValueError):
        return None


def available_bytes() -> int | None:
    """The memory available now: /proc/meminfo's MemAvailable (else the physical memory),
    less where a cgroup limit leaves less; None where neither can be read."""
    known = [b for b in (_meminfo_available(), _cgroup_room()) if b is not None]
    return min(known) if known else None


def gib(n: float) -> str:
    return f"{n / 2**30:.3g} GiB"


def require(need: int, what: str) -> None:
    """Refuse, in one line, to allocate about `need` bytes for `what` (which names the
    params keys that set the size) when more than the available memory."""
    have = available_bytes()
    if have is not None and need > have:
        raise UserError(
            f"{what} needs about {gib(need)} of memory ({need} bytes), {gib(have)} "
            f"available ({have} bytes); lower it"
        )
