"""The library side of the DVC stages, one module per stage, named after it: `theory`,
`prepare`, `pretrain`, `extract`, `probe`, `bounds`, `select_lr`, `evaluate` and `report`.

Each `stages/<name>.py` parses its command line and calls `run` of its own module here, so
the code a stage reaches is that module and what it imports (dvc.yaml lists exactly that).
Every `run` validates the params it reads before any work and writes its outputs
atomically. This package imports nothing: importing one stage's module never loads another's.
"""
