"""`surrogap evaluate`: the surrogate gap of any encoder's features, one record per K.

Given frozen features (n, d) and labels, this splits them into train and test (a given
split, or a seeded stratified one), L2-normalizes them (b = 1) and reports for each K

- the test contrastive loss R_cont with K negatives and its standard error over repeats
  (THEORY.md; the block estimator of ARCHITECTURE.md, "Estimators": negatives drawn from
  the whole test split, independent of any batch),
- R_mu and the accuracy of the mean classifier (class means from train),
- Bao et al.'s two-sided bound R_cont + Delta_L <= R_mu <= R_cont + Delta_U and the earlier
  upper bounds (Arora et al., Nozawa & Sato, Ash et al.; None where undefined),

following H. Bao, Y. Nagano, K. Nozawa, "On the Surrogate Gap between Contrastive and
Supervised Losses", ICML 2022 (arXiv:2110.02501). Losses in nats.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from surrogap.config import parse, spec
from surrogap.errors import UserError
from surrogap.evaluation import ContrastiveEstimate, mean_classifier, positive_partners
from surrogap.features import FeatureSet
from surrogap.losses import NORM_EPS

__all__ = [
    "RECORD_COLUMNS",
    "STAGE_COLUMNS",
    "EvalSplit",
    "EvaluateParams",
    "FeatureEntry",
    "bench_evaluate_flops_fraction",
    "block_contrastive_estimate",
    "block_losses",
    "check_features",
    "encode_labels",
    "evaluate",
    "evaluate_split",
    "parse_params",
    "run_stage",
    "save_plot",
    "split_features",
]

# the keys of one record, in the order of reports/results.csv where they apply
RECORD_COLUMNS = (
    "classes",
    "k",
    "contrastive_loss",
    "contrastive_loss_se",
    "supervised_loss",
    "mean_acc",
    "lower_gap",
    "upper_gap",
    "bao_lower",
    "bao_upper",
    "arora",
    "nozawa_sato",
    "ash",
    "holds",
    "n_train",
    "n_test",
    "dim",
)
STAGE_COLUMNS = ("dataset", *RECORD_COLUMNS)  # reports/external.csv
SPLIT_IGNORED = ("val", "valid", "validation")  # split values whose rows are left out
PRIORS = ("uniform", "empirical")
# bytes of the three gathered (rows, d) float32 buffers of one chunk: small enough to stay in
# the last-level cache, so each block product reads its operands from cache (about 1.0 of the
# matmul peak instead of about 0.5 for chunks of hundreds of MB)
CHUNK_BYTES = 12 * 2**20
# features whose norms stay below this are normalized by scaling their float32 inner
# products (|dot| <= 1e36 < 3.4e38); larger ones are first rescaled row by row
RAW_NORM_LIMIT = 1e18


# --------------------------------------------------------------------------- the estimator
def _chunk_losses(
    z: torch.Tensor,
    inv_norm: torch.Tensor | None,
    rows: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    k: int,
    out: torch.Tensor,
    buffers: tuple[torch.Tensor, ...],
) -> None:
    """Losses of b whole blocks into `out` (b*(K+1),).

    rows: (anchor, shown negative view, positive) row indices of z, each (b*(K+1),).
    buffers: reused (cb*(K+1), d) x 3 and (cb, K+1, K+1) scratch tensors, cb >= b.
    """
    g = k + 1
    d = z.shape[1]
    b = rows[0].numel() // g
    a, v, p = (buf[: b * g] for buf in buffers[:3])
    blk = buffers[3][:b]
    for buf, idx in zip((a, v, p), rows, strict=True):
        torch.index_select(z, 0, idx, out=buf)  # (b*(K+1), d)
    pos = p.mul_(a).sum(1)  # (b*(K+1),) s(a_i, p_i)
    torch.bmm(a.view(b, g, d), v.view(b, g, d).transpose(1, 2), out=blk)  # (b, K+1, K+1)
    if inv_norm is not None:  # rows of z are raw: scale the inner products to unit norm
        ia, iv, ip = (inv_norm[idx] for idx in rows)
        pos.mul_(ia).mul_(ip)
        blk.mul_(ia.view(b, g, 1)).mul_(iv.view(b, 1, g))
    blk.diagonal(0, 1, 2).copy_(pos.view(b, g))  # own pair -> its positive logit
    torch.sub(torch.logsumexp(blk, -1).view(-1), pos, out=out)


def block_losses(
    z: torch.Tensor,
    partner: torch.Tensor,
    k: int,
    generator: torch.Generator,
    chunk_rows: int | None = None,
    inv_norm: torch.Tensor | None = None,
    workers: int | None = None,
) -> torch.Tensor:
    """Per-anchor contrastive losses (n,) for one pairing with K block negatives each.

    z: (n, d) features, unit rows (or raw rows with inv_norm (n,) = 1 / max(||z_i||, eps));
    partner: (n,) the positive of each anchor. The same estimator as
    ``surrogap.evaluation._block_losses`` with the same random draws (one randperm of the n
    pairs cut into blocks of K + 1, a second randperm to fill the last partial block, one
    view bit per pair), computed with less memory traffic and no per-op thread barriers:

    - each chunk of blocks gathers its anchor, negative-view and positive rows straight
      from z into reused buffers small enough for the cache (no (n, d) copies);
    - the positive logit overwrites the masked diagonal of the block product instead of
      being concatenated to it (row i of a block holds the other K pairs and pair i);
    - the chunks are shared among `workers` threads (default: torch.get_num_threads()),
      each running single-threaded torch ops, so a busy core delays only its own chunk.
    """
    n, d = z.shape
    g = k + 1
    perm = torch.randperm(n, generator=generator)
    full = n // g
    rest = n - full * g
    if rest:
        fill = perm[: n - rest][torch.randperm(n - rest, generator=generator)[: g - rest]]
        perm = torch.cat([perm, fill])  # the fill pairs are negatives only
    views = torch.rand(n, generator=generator) < 0.5
    shown = torch.where(views, partner, torch.arange(n))  # (n,) the row a pair shows as a negative
    neg_rows = shown[perm]  # (nb*(K+1),)
    pos_rows = partner[perm]
    nb = perm.numel() // g
    if chunk_rows is None:
        chunk_rows = CHUNK_BYTES // (3 * 4 * d)
    cb = max(1, min(nb, chunk_rows // g))  # blocks per chunk
    starts = list(range(0, nb, cb))
    out = torch.empty(nb * g, dtype=z.dtype)
    workers = max(1, min(workers or torch.get_num_threads(), len(starts)))

    def run(first: int) -> None:
        buffers = (
            *(torch.empty(cb * g, d, dtype=z.dtype) for _ in range(3)),
            torch.empty(cb, g, g, dtype=z.dtype),
        )
        for s in starts[first::workers]:
            sl = slice(s * g, min(s + cb, nb) * g)
            _chunk_losses(z, inv_norm, (perm[sl], neg_rows[sl], pos_rows[sl]), k, out[sl], buffers)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # chunks are parallel, ops inside them are not
    try:
        if workers == 1:
            run(0)
        else:
            with ThreadPoolExecutor(workers) as pool:
                for future in [pool.submit(run, w) for w in range(workers)]:
                    future.result()
    finally:
        torch.set_num_threads(threads)
    return out[:n]  # anchors come first; the fill rows of the last block are dropped


def _rescale_rows(z: torch.Tensor) -> torch.Tensor:
    """z with each row divided by its largest |entry| (zero rows stay zero): same directions."""
    return z / z.abs().amax(1, keepdim=True).clamp_min(torch.finfo(z.dtype).tiny)


def block_contrastive_estimate(
    z: torch.Tensor,
    y: torch.Tensor,
    k: int,
    repeats: int = 10,
    seed: int = 0,
    chunk_rows: int | None = None,
    workers: int | None = None,
) -> ContrastiveEstimate:
    """Held-out contrastive loss of features z (n, d) with K negatives, mean and SE.

    Identical to ``surrogap.evaluation.contrastive_loss_estimate`` (same generator, same
    draws, equal up to float rounding) with the faster :func:`block_losses`; features are
    L2-normalized as there (x / max(||x||, eps)) but by scaling the inner products, so no
    normalized (n, d) copy is made.
    """
    n = z.shape[0]
    if k < 1 or k > n - 1:
        raise UserError(f"k: got {k}, allowed: 1..{n - 1} (samples in the split - 1)")
    if repeats < 1:
        raise UserError(f"repeats: got {repeats}, allowed: an integer >= 1")
    zf = z.float().contiguous()
    norm = torch.linalg.vector_norm(zf, dim=1)  # (n,)
    if not bool((norm <= RAW_NORM_LIMIT).all()):
        # raw inner products (or the norms themselves) could overflow float32: rescale the
        # rows by their largest entry first, which leaves the normalized rows unchanged
        zf = _rescale_rows(zf)
        norm = torch.linalg.vector_norm(zf, dim=1)
    inv_norm = 1.0 / norm.clamp_min(NORM_EPS)
    gen = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(repeats):
        partner = positive_partners(y, gen)
        losses = block_losses(zf, partner, k, gen, chunk_rows, inv_norm, workers)
        values.append(float(losses.double().mean()))
    mean = math.fsum(values) / repeats
    se = float(np.std(values, ddof=1) / math.sqrt(repeats)) if repeats > 1 else 0.0
    return ContrastiveEstimate(mean=mean, se=se, repeats=repeats)


# --------------------------------------------------------------------------- input checks
def check_features(x: np.ndarray, source: str) -> None:
    """One line naming the first NaN or inf (row, column) of x."""
    finite = np.isfinite(x)
    if not finite.all():
        row, col = (int(i) for i in np.argwhere(~finite)[0])
        raise UserError(
            f"{source!r}: features hold {float(x[row, col])} at row {row}, column {col}; "
            "allowed: finite numbers only"
        )


def encode_labels(labels: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Codes 0..C-1 (int64) for the sorted distinct labels, and the labels' names."""
    names, codes = np.unique(labels, return_inverse=True)
    return codes.astype(np.int64).reshape(-1), [str(v) for v in names]


def split_features(
    fs: FeatureSet, test_fraction: float = 0.3, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (train, test): from fs.split, or a seeded stratified split.

    The stratified split gives each class round(test_fraction * n_c) test rows, clamped to
    [2, n_c - 2] so that both splits can form a positive pair (classes need n_c >= 4).
    """
    if fs.split is not None:
        values = np.char.strip(fs.split.astype(str))
        allowed = ("train", "test", *SPLIT_IGNORED)
        bad = ~np.isin(values, allowed)
        if bad.any():
            row = int(np.argmax(bad))
            raise UserError(
                f"{fs.source!r}: split value {str(values[row])!r} at row {row}; allowed: 'train', 'test' "
                f"(rows marked {', '.join(map(repr, SPLIT_IGNORED))} are left out)"
            )
        train, test = np.flatnonzero(values == "train"), np.flatnonzero(values == "test")
        for name, idx in (("train", train), ("test", test)):
            if idx.size == 0:
                raise UserError(
                    f"{fs.source!r}: the split has no {name!r} rows; allowed: both 'train' and 'test' rows"
                )
        return train, test
    if not 0.0 < test_fraction < 1.0:
        raise UserError(f"test fraction: got {test_fraction!r}, allowed: a number in (0, 1)")
    codes, names = encode_labels(fs.labels)
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c, name in enumerate(names):
        rows = np.flatnonzero(codes == c)
        if rows.size < 4:
            raise UserError(
                f"{fs.source!r}: class {name!r} has {rows.size} sample(s); allowed: at least 4 "
                "(2 train, 2 test, for a positive pair in each split), or give a split column"
            )
        rows = rng.permutation(rows)
        n_test = min(max(round(test_fraction * rows.size), 2), rows.size - 2)
        test.append(rows[:n_test])
        train.append(rows[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


class EvalSplit:
    """Checked train/test tensors of one feature set, ready for the estimators."""

    def __init__(self, fs: FeatureSet, test_fraction: float = 0.3, seed: int = 0):
        check_features(fs.x, fs.source)
        codes, names = encode_labels(fs.labels)
        if len(names) < 2:
            raise UserError(
                f"{fs.source!r}: the labels hold {len(names)} class ({', '.join(map(repr, names))}); "
                "allowed: at least 2 classes"
            )
        train, test = split_features(fs, test_fraction, seed)
        self.names = names
        self.num_classes = len(names)
        for split, rows in (("train", train), ("test", test)):
            counts = np.bincount(codes[rows], minlength=self.num_classes)
            if (counts < 2).any():
                c = int(np.argmax(counts < 2))
                raise UserError(
                    f"{fs.source!r}: class {names[c]!r} has {counts[c]} sample(s) in the {split} split; "
                    "allowed: at least 2 in each split (a positive pair needs two samples)"
                )
        x = fs.x
        if np.abs(x).max() > RAW_NORM_LIMIT / math.sqrt(x.shape[1]):
            # the float32 norms of such rows can overflow (l2_normalize would zero them)
            x = _rescale_rows(torch.from_numpy(x)).numpy()
        self.z_train = torch.from_numpy(x[train])
        self.y_train = torch.from_numpy(codes[train])
        self.z_test = torch.from_numpy(x[test])
        self.y_test = torch.from_numpy(codes[test])
        self.train_counts = np.bincount(codes[train], minlength=self.num_classes)
        self.source = fs.source

    @property
    def n_test(self) -> int:
        return int(self.z_test.shape[0])

    def check_k(self, ks: Sequence[int]) -> None:
        if len(ks) == 0:
            raise UserError("k: got no values; allowed: one or more integers >= 1")
        for k in ks:
            if (
                isinstance(k, bool)
                or not isinstance(k, (int, np.integer))
                or not 1 <= k <= self.n_test - 1
            ):
                raise UserError(
                    f"k: got {k!r} for {self.n_test} test samples of {self.source!r}; "
                    f"allowed: 1..{self.n_test - 1} (test samples - 1)"
                )


def evaluate_split(
    data: EvalSplit, ks: Sequence[int], repeats: int = 10, seed: int = 0, prior: str = "uniform"
) -> list[dict]:
    """One record per K (keys RECORD_COLUMNS) for a checked split."""
    from surrogap.cli import bounds_records

    data.check_k(ks)
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise UserError(f"repeats: got {repeats!r}, allowed: an integer >= 1")
    if prior not in PRIORS:
        raise UserError(f"prior: got {prior!r}, allowed: {', '.join(PRIORS)}")
    mu = mean_classifier(data.z_train, data.y_train, data.z_test, data.y_test, data.num_classes)
    estimates = [
        block_contrastive_estimate(data.z_test, data.y_test, int(k), repeats, seed) for k in ks
    ]
    weights = None
    if prior == "empirical":
        weights = (data.train_counts / data.train_counts.sum()).tolist()
    records = bounds_records(
        [int(k) for k in ks],
        None if weights is not None else data.num_classes,
        [e.mean for e in estimates],
        weights,
    )
    out = []
    for rec, est in zip(records, estimates, strict=True):
        r_mu = mu["supervised_loss"]
        out.append(
            {
                "classes": data.num_classes,
                "k": rec["k"],
                "contrastive_loss": est.mean,
                "contrastive_loss_se": est.se,
                "supervised_loss": r_mu,
                "mean_acc": mu["mean_acc"],
                "lower_gap": rec["lower_gap"],
                "upper_gap": rec["upper_gap"],
                "bao_lower": rec["bao_lower"],
                "bao_upper": rec["bao_upper"],
                "arora": rec["arora"],
                "nozawa_sato": rec["nozawa_sato"],
                "ash": rec["ash"],
                "holds": bool(rec["bao_lower"] <= r_mu <= rec["bao_upper"]),
                "n_train": int(data.z_train.shape[0]),
                "n_test": data.n_test,
                "dim": int(data.z_test.shape[1]),
            }
        )
    return out


def evaluate(
    fs: FeatureSet,
    ks: Sequence[int],
    repeats: int = 10,
    seed: int = 0,
    test_fraction: float = 0.3,
    prior: str = "uniform",
) -> list[dict]:
    """Check, split and evaluate a feature set: one record per K (keys RECORD_COLUMNS).

    Every input check (finite features, >= 2 classes, >= 2 samples of each class in each
    split, 1 <= K <= n_test - 1) runs before any estimate, so a bad input costs nothing.
    """
    data = EvalSplit(fs, test_fraction, seed)
    data.check_k(ks)
    return evaluate_split(data, ks, repeats, seed, prior)


# --------------------------------------------------------------------------- the stage
def _one_line(s: str) -> bool:
    return bool(s.strip()) and "\n" not in s


@dataclass(frozen=True)
class FeatureEntry:
    """One feature set of params `evaluate.features`."""

    name: str = spec(check=_one_line, allowed="a non-empty one-line string")
    path: str = spec(check=_one_line, allowed="a path to a features file or datasets folder")
    labels: str | None = spec(
        None, check=_one_line, allowed="a path to a .npy, .txt or .csv labels file"
    )
    features_key: str | None = spec(None, check=_one_line, allowed="an npz key or column name")
    labels_key: str | None = spec(None, check=_one_line, allowed="an npz key or column name")
    split_column: str | None = spec(None, check=_one_line, allowed="an npz key or column name")


@dataclass(frozen=True)
class EvaluateParams:
    """The `evaluate` section of params.yaml."""

    features: tuple[FeatureEntry, ...] = spec(factory=tuple)
    k: tuple[int, ...] = spec(
        (1, 4, 16, 64, 256),
        check=lambda v: len(v) > 0 and all(x >= 1 for x in v) and len(set(v)) == len(v),
        allowed="a non-empty list of distinct integers >= 1",
    )
    repeats: int = spec(10, check=lambda v: v >= 1, allowed="an integer >= 1")
    seed: int = spec(0, check=lambda v: v >= 0, allowed="an integer >= 0")
    test_fraction: float = spec(0.3, check=lambda v: 0 < v < 1, allowed="a number in (0, 1)")
    prior: str = spec("uniform", check=lambda v: v in PRIORS, allowed=", ".join(PRIORS))

    def validate(self, where: str) -> None:
        names = [e.name for e in self.features]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise UserError(
                    f"{where}.features[{i}].name: got {name!r} twice, allowed: distinct names"
                )


def parse_params(params: Mapping) -> EvaluateParams:
    """The `evaluate` section, strictly (an unknown key is one line, nothing runs)."""
    from surrogap.config import section

    return parse(EvaluateParams, section(params, "evaluate"), "evaluate")


def run_stage(params: Mapping, out: str | Path) -> None:
    """The `evaluate` stage: one row per (entry, K) in `out` (CSV, header only for no entries).

    Every entry is read and evaluated before anything is written; a failure names the entry.
    """
    import pandas as pd

    from surrogap import features, io

    p = parse_params(params)
    rows = []
    for i, entry in enumerate(p.features):
        try:
            fs = features.load_features(
                entry.path,
                labels_path=entry.labels,
                features_key=entry.features_key,
                labels_key=entry.labels_key,
                split_column=entry.split_column,
            )
            records = evaluate(fs, p.k, p.repeats, p.seed, p.test_fraction, p.prior)
        except UserError as exc:
            raise UserError(f"evaluate.features[{i}] ({entry.name!r}): {exc}") from None
        rows += [{"dataset": entry.name, **r} for r in records]
    df = pd.DataFrame(rows, columns=list(STAGE_COLUMNS))
    io.write_with(out, lambda tmp: df.to_csv(tmp, index=False, float_format="%.10g"), suffix=".csv")


# --------------------------------------------------------------------------- the plot
def surrogate_gap_figure(records: Sequence[dict]):
    """The figure of ``surrogap.report.plot_surrogate_gap`` for evaluate records."""
    import pandas as pd

    from surrogap.report import plot_surrogate_gap

    df = pd.DataFrame(records, columns=["k", "classes", "supervised_loss", "contrastive_loss"])
    return plot_surrogate_gap(df)


def save_plot(records: Sequence[dict], path: str | Path) -> None:
    """Write the surrogate-gap figure to `path` as PNG, atomically."""
    from surrogap import io

    fig = surrogate_gap_figure(records)
    io.write_with(path, lambda tmp: fig.savefig(tmp, format="png", dpi=150), suffix=".png")


# --------------------------------------------------------------------------- the benchmark
class _PeakRSS:
    """Peak resident set size (bytes) above the level at start, sampled every 2 ms."""

    def __init__(self):
        self.base = self.peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _rss() -> int:
        try:
            with open("/proc/self/statm") as fh:
                return int(fh.read().split()[1]) * 4096
        except OSError:  # no /proc: the lifetime peak (an upper bound of the growth)
            import resource

            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def _run(self):
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, self._rss())

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())

    @property
    def growth(self) -> int:
        return self.peak - self.base


def matmul_peak_flops(size: int = 2048, tries: int = 5) -> float:
    """fp32 FLOP/s of a size x size torch.matmul, best of `tries`."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=gen)
    b = torch.randn(size, size, generator=gen)
    torch.matmul(a, b)  # warm-up
    best = math.inf
    for _ in range(tries):
        t0 = time.perf_counter()
        torch.matmul(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * size**3 / best


def bench_evaluate_flops_fraction(quick: bool = False) -> dict:
    """Achieved FLOP/s of the held-out contrastive estimate over the fp32 matmul peak.

    n = 100000, d = 768, K = 256, 2 repeats (quick: n = 20000, d = 512, K = 128). FLOPs per
    repeat: 2 n_blocks (K+1)^2 d for the block products plus 2 n d for the positive dots.
    The peak is the best of several 2048 x 2048 matmuls measured before and after. Target
    at least 0.4, with the peak RSS growth (sampled from /proc) under 4 GB.
    """
    n, d, k, repeats = (20_000, 512, 128, 2) if quick else (100_000, 768, 256, 2)
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(n, d, generator=gen)
    y = torch.randint(0, 100, (n,), generator=gen)
    peak = matmul_peak_flops()
    warm = 4 * (k + 1)
    block_contrastive_estimate(z[:warm], torch.arange(warm) % 2, k, 1)  # warm-up
    with _PeakRSS() as rss:
        t0 = time.perf_counter()
        block_contrastive_estimate(z, y, k, repeats, seed=0)
        elapsed = time.perf_counter() - t0
    peak = max(peak, matmul_peak_flops())
    n_blocks = math.ceil(n / (k + 1))
    flops = repeats * (2.0 * n_blocks * (k + 1) ** 2 * d + 2.0 * n * d)
    achieved = flops / elapsed
    detail = (
        f"n={n} d={d} K={k} repeats={repeats}: {elapsed:.2f} s, {achieved / 1e9:.1f} GFLOP/s "
        f"of a {peak / 1e9:.1f} GFLOP/s fp32 matmul peak; peak RSS growth "
        f"{rss.growth / 2**20:.0f} MiB (limit 4096 MiB)"
    )
    return {
        "name": "evaluate_flops_fraction",
        "value": achieved / peak,
        "target": 0.4,
        "detail": detail,
        "rss_growth_bytes": rss.growth,
    }
