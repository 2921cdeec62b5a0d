"""The report: every figure, table and claim test of Bao, Nagano & Nozawa (ICML 2022,
arXiv:2110.02501), from what the pipeline wrote.

- `load`: reading and checking results.csv, trajectories, external.csv, the per-point
  arrays of the probe stage, and the `report` params.
- `claims`: the claim tests (confirmed / not confirmed / inconclusive, with numbers).
- `stats`: the seed-level intervals, trends and power lines the claims stand on.
- `markdown`: the report's text (`build_report`); its figures come from `surrogap.plots`.

This file imports nothing, so a stage pays only for the modules it uses.
"""
