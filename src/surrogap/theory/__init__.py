"""The theory layer: the bounds, the special sums, the ideal curves (no torch, no pipeline)."""
