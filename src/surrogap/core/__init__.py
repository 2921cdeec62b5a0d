"""The base layer: errors, params parsing, atomic io, the stage entry pattern, argparse types, and every on-disk contract (column tuples, run names, prepared data and its meta.json)."""
