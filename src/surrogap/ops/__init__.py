"""Operations around the pipeline: the Dask sweep and the benchmarks."""
