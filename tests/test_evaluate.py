"""`surrogap evaluate`, its estimator, its readers and the `evaluate` stage.

Oracles: a naive per-anchor loop of the block estimator with the same random draws, and
the naive i.i.d.-negatives estimator of THEORY.md's R_cont; closed forms: antipodal and
simplex features, whose losses are known exactly; round trips of every input format;
every bad input is one line on stderr, exit status 2 and no output file.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest
from scipy import stats

from surrogap import cli
from surrogap.core.errors import UserError
from surrogap.estimators import evaluation, external, features
from surrogap.estimators.evaluation import l2_normalize, positive_partners
from surrogap.theory import bounds

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "stages"))
import evaluate as evaluate_stage  # noqa: E402


# --------------------------------------------------------------------------- fixtures
def mixture(n: int = 240, d: int = 6, c: int = 4, seed: int = 0, scale: float = 1.5):
    """Gaussian class clusters: x (n, d) float32, y (n,) int64 with every class present."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % c
    rng.shuffle(y)
    centers = rng.normal(size=(c, d))
    x = (scale * centers[y] + rng.normal(size=(n, d))).astype(np.float32)
    return x, y.astype(np.int64)


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    rc = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# --------------------------------------------------------------------------- the estimator
def naive_block_losses(z: np.ndarray, partner: np.ndarray, k: int, slots: list, views: list):
    """The block estimator from its definition, anchor by anchor, in float64 Python, for a
    given draw: `slots` lists the pairs block after block (K + 1 each; the slots past the
    n-th are fillers, negatives only) and `views[j]` says whether pair j shows its positive.
    Anchor i of a block has positive partner[i] and as negatives the shown view of every
    other pair of its block.
    """
    n = z.shape[0]
    g = k + 1
    zz = np.asarray(z, dtype=np.float64).tolist()
    part = partner.tolist()

    def dot(u, v):
        return math.fsum(a * b for a, b in zip(zz[u], zz[v], strict=True))

    order = list(slots)
    losses = []
    for pos_in_perm, i in enumerate(order[:n]):
        start = pos_in_perm - pos_in_perm % g
        block = order[start : start + g]
        logits = [dot(i, part[i])]
        for j_pos, j in enumerate(block):
            if start + j_pos == pos_in_perm:
                continue
            shown = part[j] if views[j] else j
            logits.append(dot(i, shown))
        top = max(logits)
        losses.append(top + math.log(math.fsum(math.exp(s - top) for s in logits)) - logits[0])
    return losses


@pytest.mark.parametrize(
    ("n", "d", "k"), [(30, 4, 1), (30, 5, 4), (40, 3, 7), (25, 6, 24), (36, 4, 5)]
)
def test_block_losses_match_the_naive_loop(n, d, k):
    gen = np.random.default_rng(n + k)
    z = l2_normalize(gen.standard_normal((n, d), dtype=np.float32))
    y = np.arange(n) % 3
    g = np.random.default_rng(7)
    partner = positive_partners(y, g)
    # a draw given explicitly, not replayed: pairs in a random order, fillers, random views
    slots = g.permutation(n)
    rest = n % (k + 1)
    if rest:  # fillers: k + 1 - rest pairs from outside the partial block
        outside = slots[: n - rest]
        fill = outside[g.permutation(outside.size)[: k + 1 - rest]]
        slots = np.concatenate([slots, fill])
    views = g.random(n) < 0.5
    fast = evaluation.block_losses(z, partner, k, None, 2 * (k + 1), draw=(slots, views))
    naive = naive_block_losses(z, partner, k, slots.tolist(), views.tolist())
    np.testing.assert_allclose(fast.astype(np.float64), naive, rtol=1e-5, atol=1e-5)


def test_block_draw_is_a_permutation_with_fillers_from_other_blocks():
    for n, k in ((30, 4), (31, 4), (10, 9), (7, 1)):
        slots, views = evaluation.block_draw(n, k, np.random.default_rng(n + k))
        g, rest = k + 1, n % (k + 1)
        assert slots.size % g == 0 and views.shape == (n,)
        assert sorted(slots[:n].tolist()) == list(range(n))
        fill = slots[n:].tolist()
        assert len(fill) == (g - rest if rest else 0)
        assert len(set(fill)) == len(fill) and not set(fill) & set(slots[n - rest : n].tolist())


@pytest.mark.parametrize(("n", "k"), [(64, 1), (64, 7), (100, 9), (257, 256), (1000, 64)])
def test_fast_estimate_equals_evaluation_estimate(n, k):
    gen = np.random.default_rng(k)
    z = (gen.standard_normal((n, 16)) * gen.random((n, 1)) * 10).astype(np.float32)
    z[3] = 0.0  # a zero row stays zero (no NaN)
    y = gen.integers(0, 5, n)
    ref = evaluation.contrastive_loss_estimate(z, y, k, repeats=3, seed=11)
    for chunk_rows, workers in ((None, None), (k + 1, 1), (3 * (k + 1) + 1, 3)):
        got = evaluation.contrastive_loss_estimate(
            z, y, k, repeats=3, seed=11, chunk_rows=chunk_rows, workers=workers
        )
        assert got.mean == pytest.approx(ref.mean, rel=1e-6, abs=1e-6)
        assert got.se == pytest.approx(ref.se, rel=1e-3, abs=1e-6)


def test_huge_norms_are_normalized_without_overflow():
    gen = np.random.default_rng(0)
    z = gen.standard_normal((200, 8), dtype=np.float32)
    y = np.arange(200) % 4
    ref = evaluation.contrastive_loss_estimate(z, y, 8, repeats=2)
    big = evaluation.contrastive_loss_estimate(z * 1e30, y, 8, repeats=2)  # dots overflow float32
    assert big.mean == pytest.approx(ref.mean, rel=1e-5)
    x, labels = mixture(n=120, c=3)
    small = external.evaluate(features.FeatureSet(x, labels, None, "m"), [4], repeats=2)[0]
    huge = external.evaluate(features.FeatureSet(x * 1e30, labels, None, "m"), [4], repeats=2)[0]
    for key in ("contrastive_loss", "supervised_loss", "mean_acc"):
        assert huge[key] == pytest.approx(small[key], rel=1e-5), key


def test_block_estimate_agrees_with_iid_negatives_in_distribution():
    """THEORY.md's R_cont: positive of the anchor's class, K i.i.d. negatives from the split."""
    x, y = mixture(n=3000, d=8, c=5, seed=3, scale=1.0)
    z = l2_normalize(x.astype(np.float64))
    k, reps = 16, 4
    rng = np.random.default_rng(0)
    by_class = [np.flatnonzero(y == c) for c in range(5)]
    per_anchor = []
    for _ in range(reps):
        pos = np.empty(len(y), dtype=np.int64)
        for rows in by_class:  # a uniformly random other sample of the class
            r = rng.integers(0, len(rows) - 1, size=len(rows))
            pos[rows] = rows[r + (r >= np.arange(len(rows)))]
        neg = rng.integers(0, len(y), size=(len(y), k))  # (n, K) i.i.d. over the split
        s_pos = (z * z[pos]).sum(1)
        s_neg = np.einsum("nd,nkd->nk", z, z[neg])
        logits = np.concatenate([s_pos[:, None], s_neg], 1)
        top = logits.max(1)
        per_anchor.append(top + np.log(np.exp(logits - top[:, None]).sum(1)) - s_pos)
    per_anchor = np.concatenate(per_anchor)
    naive, naive_se = per_anchor.mean(), per_anchor.std(ddof=1) / math.sqrt(per_anchor.size)
    est = evaluation.contrastive_loss_estimate(x, y, k, repeats=8)
    tol = 4 * math.hypot(naive_se, est.se) + 2e-3
    assert abs(est.mean - naive) < tol, (est, naive, naive_se)


def test_standard_error_shrinks_and_is_zero_for_one_repeat():
    x, y = mixture(n=400, seed=1)
    z, yy = x, y
    one = evaluation.contrastive_loss_estimate(z, yy, 4, repeats=1)
    assert one.se == 0.0
    many = evaluation.contrastive_loss_estimate(z, yy, 4, repeats=6)
    assert 0 < many.se < 0.1


# --------------------------------------------------------------------------- closed forms
def antipodal(n_per_class: int, d: int = 3):
    """C = 2 classes at +e1 and -e1 (with norms that normalization removes)."""
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], n_per_class)
    x = np.zeros((2 * n_per_class, d), dtype=np.float32)
    x[:, 0] = np.where(y == 0, 1.0, -1.0) * rng.uniform(0.5, 2.0, size=y.size)
    return x, y


def simplex(num_classes: int, n_per_class: int):
    """C classes at the vertices of a regular simplex: cross-class inner product -1/(C-1)."""
    c = num_classes
    vertices = np.eye(c) - 1.0 / c
    vertices /= np.linalg.norm(vertices, axis=1, keepdims=True)
    y = np.repeat(np.arange(c), n_per_class)
    return vertices[y].astype(np.float32), y


def test_antipodal_features_reach_the_ideal_losses():
    x, y = antipodal(1500)
    fs = features.FeatureSet(x=x, labels=y, split=None, source="antipodal")
    ks = [1, 4, 16]
    records = external.evaluate(fs, ks, repeats=6, seed=0)
    r_mu_star = bounds.optimal_supervised_loss(2)
    for rec in records:
        assert rec["supervised_loss"] == pytest.approx(r_mu_star, abs=1e-6)
        assert rec["mean_acc"] == 1.0
        ideal = bounds.optimal_contrastive_loss(rec["k"], 2)
        assert abs(rec["contrastive_loss"] - ideal) < 4 * rec["contrastive_loss_se"] + 0.01
        assert rec["holds"] is True


def simplex_contrastive_loss(k: int, c: int) -> float:
    """E_{m ~ Binom(K, 1/C)} log(1 + m + (K - m) e^{-1 - 1/(C-1)}): simplex features."""
    m = np.arange(k + 1)
    q = math.exp(-1.0 - 1.0 / (c - 1))
    return float((stats.binom.pmf(m, k, 1.0 / c) * np.log1p(m + (k - m) * q)).sum())


@pytest.mark.parametrize("c", [3, 6])
def test_simplex_features_sit_inside_the_bounds(c):
    x, y = simplex(c, 600 // c)
    fs = features.FeatureSet(x=x, labels=y, split=None, source="simplex")
    records = external.evaluate(fs, [1, 4, 16, 64], repeats=4, seed=1)
    r_mu = math.log1p((c - 1) * math.exp(-c / (c - 1)))
    for rec in records:
        assert rec["supervised_loss"] == pytest.approx(r_mu, abs=1e-6)
        assert rec["supervised_loss"] >= bounds.optimal_supervised_loss(c)
        assert rec["contrastive_loss"] >= bounds.optimal_contrastive_loss(rec["k"], c) - 1e-9
        # negatives are drawn without replacement from 180 test pairs, hence the slack
        expected = simplex_contrastive_loss(rec["k"], c)
        assert abs(rec["contrastive_loss"] - expected) < 4 * rec["contrastive_loss_se"] + 0.03
        assert rec["bao_lower"] <= rec["supervised_loss"] <= rec["bao_upper"]
        assert rec["holds"] is True


def test_records_carry_the_results_columns_and_the_bounds():
    x, y = mixture(n=300, c=3)
    fs = features.FeatureSet(x=x, labels=y, split=None, source="m")
    records = external.evaluate(fs, [1, 2, 8], repeats=2)
    assert [list(r) for r in records] == [list(external.RECORD_KEYS)] * 3
    by_k = {r["k"]: r for r in records}
    assert by_k[1]["arora"] is None and by_k[1]["nozawa_sato"] is None  # K + 1 < C
    assert by_k[2]["arora"] is not None and by_k[8]["ash"] is not None
    for r in records:
        assert r["bao_upper"] - r["bao_lower"] == pytest.approx(r["upper_gap"] - r["lower_gap"])
        assert r["bao_upper"] == pytest.approx(r["contrastive_loss"] + r["upper_gap"])
        assert (r["n_train"], r["n_test"], r["dim"], r["classes"]) == (210, 90, 6, 3)


def test_stratified_split_is_seeded_and_keeps_every_class():
    x, y = mixture(n=103, c=4)
    fs = features.FeatureSet(x=x, labels=y, split=None, source="m")
    tr1, te1 = external.split_features(fs, 0.3, seed=5)
    tr2, te2 = external.split_features(fs, 0.3, seed=5)
    assert np.array_equal(te1, te2) and np.array_equal(tr1, tr2)
    assert not np.array_equal(te1, external.split_features(fs, 0.3, seed=6)[1])
    assert sorted(np.concatenate([tr1, te1]).tolist()) == list(range(103))
    for c in range(4):
        n_c = int((y == c).sum())
        assert int((y[te1] == c).sum()) == round(0.3 * n_c)


# --------------------------------------------------------------------------- formats
@pytest.fixture(scope="module")
def data():
    return mixture(n=160, d=5, c=4, seed=2)


def write_formats(folder: Path, x: np.ndarray, y: np.ndarray) -> dict[str, list[str]]:
    """Every accepted format of (x, y): name -> CLI arguments that read it back."""
    names = np.asarray([f"class-{v}" for v in y])
    np.save(folder / "x.npy", x)
    np.save(folder / "y.npy", y)
    (folder / "y.txt").write_text("\n".join(map(str, y)) + "\n")
    (folder / "y.csv").write_text("id,label\n" + "".join(f"{i},{v}\n" for i, v in enumerate(y)))
    (folder / "bare.csv").write_text("".join(f"{v}\n" for v in names))
    np.savez(folder / "a.npz", features=x, labels=y)
    np.savez(folder / "b.npz", x=x, y=names)
    np.savez(folder / "emb.npz", emb=x, cls=y)
    emb = pa.array(x.tolist(), type=pa.list_(pa.float32()))
    pq.write_table(pa.table({"embedding": emb, "label": y}), folder / "t.parquet")
    cols = {f"f{j}": x[:, j] for j in range(x.shape[1])}
    pq.write_table(pa.table({**cols, "labels": names}), folder / "wide.parquet")
    fixed = pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), x.shape[1])
    feather.write_feather(pa.table({"features": fixed, "label": y}), folder / "t.feather")
    with pa.OSFile(str(folder / "t.arrow"), "wb") as sink:
        table = pa.table({"vec": emb, "target": names})
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
    return {
        "npy+npy": ["x.npy", "--labels", "y.npy"],
        "npy+txt": ["x.npy", "--labels", "y.txt"],
        "npy+csv": ["x.npy", "--labels", "y.csv"],
        "npy+bare-csv": ["x.npy", "--labels", "bare.csv"],
        "npz": ["a.npz"],
        "npz-xy-strings": ["b.npz"],
        "npz-keys": ["emb.npz", "--features-key", "emb", "--labels-key", "cls"],
        "parquet-list": ["t.parquet"],
        "parquet-columns": ["wide.parquet"],
        "feather": ["t.feather"],
        "arrow-stream": ["t.arrow", "--features-column", "vec", "--labels-column", "target"],
    }


def load_via_args(folder: Path, args: list[str]) -> features.FeatureSet:
    parsed = cli.build_parser().parse_args(
        ["evaluate", str(folder / args[0]), "--k", "1", *args[1:]]
    )
    return features.load_features(
        parsed.features,
        labels_path=None if parsed.labels is None else folder / parsed.labels,
        features_key=parsed.features_key,
        labels_key=parsed.labels_key,
        split_column=parsed.split_column,
    )


def test_every_format_round_trips(tmp_path, data):
    x, y = data
    for name, args in write_formats(tmp_path, x, y).items():
        fs = load_via_args(tmp_path, args)
        assert fs.x.dtype == np.float32 and fs.x.shape == x.shape, name
        np.testing.assert_array_equal(fs.x, x, err_msg=name)
        codes, _ = external.encode_labels(fs.labels)
        want, _ = external.encode_labels(y)  # the same classes: the same codes
        np.testing.assert_array_equal(codes, want, err_msg=name)
        assert fs.split is None


def test_labels_map_to_codes_in_order_of_first_appearance():
    codes, names = external.encode_labels(np.asarray(["dog", "cat", "emu", "cat"]))
    assert names == ["dog", "cat", "emu"]
    assert codes.tolist() == [0, 1, 2, 1]
    assert external.encode_labels(np.asarray([7, 3, 7, 10]))[0].tolist() == [0, 1, 0, 2]


def test_class_names_change_no_number(tmp_path, capsys):
    # 12 classes: as integers, as their decimal strings ("10" < "2" as strings), and
    # permuted names; the split and every estimate used to follow the sorted names
    # (1.28786 vs 1.28959): now identical records from the command and the stage
    rng = np.random.default_rng(5)
    y = np.arange(240) % 12
    x = (2 * rng.normal(size=(12, 6))[y] + rng.normal(size=(240, 6))).astype(np.float32)
    namings = {
        "int": y,
        "str": y.astype(str),
        "reversed": 11 - y,
        "letters": np.asarray(list("abcdefghijkl"))[(5 * y) % 12],
    }
    outs = {}
    for name, labels in namings.items():
        np.savez(tmp_path / f"{name}.npz", x=x, y=labels)
        rc, out, err = run_cli(
            capsys,
            "evaluate",
            tmp_path / f"{name}.npz",
            "--k",
            1,
            8,
            "--repeats",
            2,
            "--seed",
            1,
            "--json",
        )
        assert rc == 0, err
        outs[name] = json.loads(out)
    assert all(recs == outs["int"] for recs in outs.values())
    # integer labels whose classes first appear in increasing order keep the numbers the
    # sorted-names mapping gave
    got = [r[key] for r in outs["int"] for key in ("contrastive_loss", "supervised_loss")]
    assert got == pytest.approx(
        [0.4196739598280854, 1.9021147629735924, 1.6797424728671708, 1.9021147629735924],
        rel=1e-9,
    )


def test_datasets_folders_round_trip(tmp_path, data):
    datasets = pytest.importorskip("datasets")
    x, y = data
    ds = datasets.Dataset.from_dict({"embedding": x.tolist(), "label": y.tolist()})
    ds.save_to_disk(str(tmp_path / "ds"))
    fs = features.load_features(tmp_path / "ds")
    np.testing.assert_array_equal(fs.x, x)
    np.testing.assert_array_equal(fs.labels, y)
    dd = datasets.DatasetDict({"train": ds.select(range(100)), "test": ds.select(range(100, 160))})
    dd.save_to_disk(str(tmp_path / "dd"))
    fs = features.load_features(tmp_path / "dd")
    np.testing.assert_array_equal(fs.x, x)
    assert fs.split.tolist() == ["train"] * 100 + ["test"] * 60
    records = external.evaluate(fs, [1, 8], repeats=2)
    assert (records[0]["n_train"], records[0]["n_test"]) == (100, 60)


def test_split_column_and_extract_npz(tmp_path, data):
    x, y = data
    split = np.where(np.arange(len(y)) < 100, "train", "test")
    split[:8] = "validation"  # left out
    emb = pa.array(x.tolist(), type=pa.list_(pa.float32()))
    pq.write_table(pa.table({"embedding": emb, "label": y, "split": split}), tmp_path / "s.parquet")
    fs = features.load_features(tmp_path / "s.parquet", split_column="split")
    rec = external.evaluate(fs, [1], repeats=1)[0]
    assert (rec["n_train"], rec["n_test"]) == (92, 60)
    np.savez(
        tmp_path / "k4-s0.npz",
        train_x=x[:100],
        train_y=y[:100],
        val_x=x[:3],
        val_y=y[:3],
        test_x=x[100:],
        test_y=y[100:],
    )
    fs = features.load_features(tmp_path / "k4-s0.npz")
    np.testing.assert_array_equal(fs.x, x)
    assert (fs.split == "test").sum() == 60


def test_cli_json_table_and_plot(tmp_path, capsys, data):
    x, y = data
    np.savez(tmp_path / "a.npz", features=x, labels=y)
    plot = tmp_path / "gap.png"
    rc, out, err = run_cli(
        capsys,
        "evaluate",
        tmp_path / "a.npz",
        "--k",
        1,
        4,
        16,
        "--repeats",
        3,
        "--json",
        "--plot",
        plot,
    )
    assert rc == 0, err
    records = json.loads(out)
    assert [r["k"] for r in records] == [1, 4, 16]
    assert list(records[0]) == list(external.RECORD_KEYS)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert leftovers(tmp_path) == ["a.npz", "gap.png"]  # no temporary file left
    again = external.evaluate(features.load_features(tmp_path / "a.npz"), [1, 4, 16], repeats=3)
    assert records == json.loads(json.dumps(again))  # the CLI is the library
    rc, out, err = run_cli(capsys, "evaluate", tmp_path / "a.npz", "--k", 1, 4, "--repeats", 2)
    assert rc == 0 and err == ""
    lines = out.splitlines()
    assert "C = 4" in lines[0] and lines[1].split()[:3] == [
        "k",
        "contrastive_loss",
        "contrastive_loss_se",
    ]
    rows = [line.split() for line in lines[3:5]]
    assert [row[-2:] for row in rows] == [["True", "above_log_c"]] * 2  # holds, vacuity
    assert len(lines) == 6 and lines[-1].startswith("vacuity above_log_c: bao_upper above log C")


# --------------------------------------------------------------------------- bad input
def bad_inputs(folder: Path, x: np.ndarray, y: np.ndarray) -> dict[str, tuple[list[str], str]]:
    """name -> (CLI arguments, a fragment the one-line message must hold)."""
    nan = x.copy()
    nan[7, 2] = np.nan
    np.savez(folder / "nan.npz", features=nan, labels=y)
    inf = x.copy()
    inf[3, 0] = np.inf
    np.savez(folder / "inf.npz", features=inf, labels=y)
    np.savez(folder / "one.npz", features=x, labels=np.zeros_like(y))
    lone = y.copy()
    lone[lone == 3] = 2
    lone[0] = 3  # class 3 has a single sample
    np.savez(folder / "lone.npz", features=x, labels=lone)
    split = np.where(np.arange(len(y)) < 100, "train", "test")
    test_y = y.copy()
    test_y[100:][test_y[100:] == 1] = 0
    test_y[150] = 1  # class 1: one test sample
    np.savez(folder / "split1.npz", features=x, labels=test_y, split=split)
    np.savez(
        folder / "badsplit.npz", features=x, labels=y, split=np.where(split == "test", "dev", split)
    )
    np.savez(folder / "ok.npz", features=x, labels=y)
    np.save(folder / "x.npy", x)
    np.save(folder / "short.npy", y[:-1])
    np.save(folder / "vec.npy", x[:, 0])
    (folder / "junk.npy").write_bytes(b"not a numpy file at all")
    (folder / "trunc.npy").write_bytes((folder / "x.npy").read_bytes()[:200])
    (folder / "y.json").write_text("[]")
    (folder / "folder").mkdir()
    emb = pa.array(x.tolist(), type=pa.list_(pa.float32()))
    pq.write_table(pa.table({"embedding": emb, "label": y}), folder / "t.parquet")
    pq.write_table(pa.table({"embedding": emb, "cls": y}), folder / "nolabel.parquet")
    ragged = pa.array([row[: 5 - (i == 9)] for i, row in enumerate(x.tolist())])
    pq.write_table(pa.table({"embedding": ragged, "label": y}), folder / "ragged.parquet")
    return {
        "nan": (["nan.npz"], "nan at row 7, column 2"),
        "inf": (["inf.npz"], "inf at row 3, column 0"),
        "one class": (["one.npz"], "at least 2 classes"),
        "single-sample class": (["lone.npz"], "class '3' has 1 sample"),
        "single test sample": (
            ["split1.npz", "--split-column", "split"],
            "class '1' has 1 sample(s) in the test split",
        ),
        "unknown split value": (["badsplit.npz", "--split-column", "split"], "split value 'dev'"),
        "k too large": (["ok.npz", "--k", "48"], "allowed: 1..47"),
        "length mismatch": (["x.npy", "--labels", "short.npy"], "160 feature rows but labels"),
        "1-D features": (["vec.npy", "--labels", "short.npy"], "2-D array"),
        "npy without labels": (["x.npy"], "--labels"),
        "missing file": (["nowhere.npz"], "does not exist"),
        "unknown format": (["junk.npy"], "unknown format"),
        "truncated npy": (["trunc.npy", "--labels", "short.npy"], "cannot read"),
        "plain folder": (["folder"], "not one saved by datasets"),
        "labels format": (["x.npy", "--labels", "y.json"], "allowed: .npy, .txt, .csv"),
        "missing npz key": (["ok.npz", "--features-key", "emb"], "no features array 'emb'"),
        "missing column": (["t.parquet", "--features-column", "vec"], "no features column 'vec'"),
        "missing labels column": (["nolabel.parquet"], "no labels column"),
        "ragged lists": (["ragged.parquet"], "lists of one length"),
        "missing split column": (["t.parquet", "--split-column", "fold"], "no split column 'fold'"),
        "bad test fraction": (["ok.npz", "--test-fraction", "1.5"], "allowed: a number in (0, 1)"),
    }


def test_bad_inputs_are_one_line_and_write_nothing(tmp_path, capsys, data):
    x, y = data
    cases = bad_inputs(tmp_path, x, y)
    before = leftovers(tmp_path)
    for name, (args, fragment) in cases.items():
        labels = [tmp_path / a if prev == "--labels" else a for prev, a in itertools.pairwise(args)]
        argv = ["evaluate", tmp_path / args[0], *labels]
        if "--k" not in args:
            argv += ["--k", 1, 4]
        rc, out, err = run_cli(capsys, *argv, "--repeats", 1, "--plot", tmp_path / "out.png")
        assert rc == 2, name
        assert out == "", name
        assert err.count("\n") == 1 and fragment in err, (name, err)
        assert leftovers(tmp_path) == before, name


def test_k_checks_use_the_test_split_size():
    x, y = mixture(n=80, c=4)
    fs = features.FeatureSet(x=x, labels=y, split=None, source="m")
    n_test = 24  # 6 of each class's 20
    assert external.evaluate(fs, [n_test - 1], repeats=1)[0]["n_test"] == n_test
    with pytest.raises(UserError, match=f"allowed: 1..{n_test - 1}"):
        external.evaluate(fs, [n_test], repeats=1)


# --------------------------------------------------------------------------- the stage
def write_params(folder: Path, section: str) -> Path:
    path = folder / "params.yaml"
    path.write_text(section)
    return path


def test_stage_with_an_empty_list_writes_the_header(tmp_path):
    params = write_params(tmp_path, "evaluate:\n  features: []\n  k: [1, 4]\n")
    out = tmp_path / "reports" / "external.csv"
    assert (
        evaluate_stage.main(["--params", str(params), "--out", str(out), "--inputs", str(tmp_path)])
        == 0
    )
    assert out.read_text() == ",".join(external.STAGE_COLUMNS) + "\n"


def test_stage_with_one_entry(tmp_path, monkeypatch, data):
    import pandas as pd

    x, y = data
    monkeypatch.chdir(tmp_path)
    np.save(tmp_path / "x.npy", x)
    (tmp_path / "y.txt").write_text("\n".join(f"c{v}" for v in y))
    params = write_params(
        tmp_path,
        "evaluate:\n  features:\n    - {name: mine, path: x.npy, labels: y.txt}\n"
        "  k: [1, 4, 16]\n  repeats: 2\n  seed: 3\n",
    )
    assert (
        evaluate_stage.main(["--params", str(params), "--out", "external.csv", "--inputs", "."])
        == 0
    )
    df = pd.read_csv(tmp_path / "external.csv")
    assert list(df.columns) == list(external.STAGE_COLUMNS)
    assert df["dataset"].tolist() == ["mine"] * 3 and df["k"].tolist() == [1, 4, 16]
    assert df["holds"].dtype == bool
    fs = features.load_features("x.npy", labels_path="y.txt")
    expected = external.evaluate(fs, [1, 4, 16], repeats=2, seed=3)
    np.testing.assert_allclose(
        df["contrastive_loss"], [r["contrastive_loss"] for r in expected], rtol=1e-8
    )
    assert df["vacuity"].tolist() == [r["vacuity"] for r in expected]


@pytest.mark.parametrize(
    ("section", "fragment"),
    [
        ("evaluate:\n  features: []\n  ks: [1]\n", "unknown key 'ks'"),
        (
            "evaluate:\n  features:\n    - {name: a, path: x.npy, label: y.npy}\n",
            "unknown key 'label'",
        ),
        (
            "evaluate:\n  features:\n    - {name: a, path: nowhere.npz}\n",
            "evaluate.features[0] ('a')",
        ),
        ("evaluate:\n  k: [0]\n", "evaluate.k"),
        (
            "evaluate:\n  features:\n    - {name: a, path: x.npy}\n    - {name: a, path: y.npy}\n",
            "twice",
        ),
        ("other: {}\n", "section 'evaluate' is missing"),
        (
            "evaluate:\n  features:\n    - {name: a, path: ../x.npy}\n",
            "evaluate.features[0].path: got '../x.npy', allowed: a path inside '.'",
        ),
        (
            "evaluate:\n  features:\n    - {name: a, path: x.npy, labels: /y.npy}\n",
            "evaluate.features[0].labels: got '/y.npy'",
        ),
    ],
)
def test_stage_bad_params_write_nothing(tmp_path, capsys, monkeypatch, section, fragment):
    monkeypatch.chdir(tmp_path)
    params = write_params(tmp_path, section)
    assert (
        evaluate_stage.main(["--params", str(params), "--out", "out/external.csv", "--inputs", "."])
        == 2
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and fragment in err, err
    assert not (tmp_path / "out").exists()


def test_empirical_prior_uses_train_frequencies():
    x, y = mixture(n=200, c=3)
    y = np.where(np.arange(200) < 40, 0, y)  # class 0 over-represented
    fs = features.FeatureSet(x=x, labels=y, split=None, source="m")
    rec = external.evaluate(fs, [4], repeats=2, prior="empirical")[0]
    data = external.EvalSplit(fs)
    prior = data.train_counts / data.train_counts.sum()
    assert rec["lower_gap"] == pytest.approx(bounds.lower_gap(4, prior=prior))
    assert rec["upper_gap"] == pytest.approx(bounds.upper_gap(4, prior=prior))
    assert rec["arora"] is None and rec["nozawa_sato"] is None and rec["ash"] is None


def test_float64_features_too_large_for_float32_say_so(tmp_path, capsys):
    """1e300 is finite in float64 but inf in float32: the line says that (no numpy warning)."""
    x, y = mixture(n=40, c=4)
    big = x.astype(np.float64)
    big[3, 1] = -1e300
    np.savez(tmp_path / "big.npz", x=big, y=y)
    with np.errstate(all="raise"):  # a numpy overflow warning would fail here
        rc, out, err = run_cli(capsys, "evaluate", tmp_path / "big.npz", "--k", 1, "--repeats", 1)
    assert rc == 2 and out == "" and err.count("\n") == 1, err
    assert "finite values too large for float32 (first at row 3: 1e+300" in err
    assert "holds NaN or inf" not in err


# --------------------------------------------------------------------------- vacuity, null words
def test_vacuous_upper_bounds_are_flagged(tmp_path, capsys):
    # random features, C = 2: R_mu is about log 2, and Bao's upper bound at K = 1 lies above
    # log(1 + e^2), the largest R_mu possible at b = 1; "holds True" says nothing there
    rng = np.random.default_rng(0)
    y = np.arange(120) % 2
    np.savez(tmp_path / "r.npz", x=rng.normal(size=(120, 8)).astype(np.float32), y=y)
    argv = ["evaluate", tmp_path / "r.npz", "--k", 1, 4, 16, "--repeats", 2]
    rc, out, err = run_cli(capsys, *argv, "--json")
    assert rc == 0, err
    records = json.loads(out)
    log_c, top = math.log(2), math.log1p(math.e**2)  # closed forms of the two thresholds
    for r in records:
        up = r["bao_upper"]
        want = "vacuous" if up > top else "above_log_c" if up > log_c else "no"
        assert r["vacuity"] == want, r
    assert records[0]["vacuity"] == "vacuous" and records[0]["holds"] is True
    rc, out, _ = run_cli(capsys, *argv)
    assert rc == 0
    cells = {int(line.split()[0]): line.split()[-1] for line in out.splitlines()[3:6]}
    assert cells == {r["k"]: r["vacuity"] for r in records}
    assert f"vacuity vacuous: bao_upper above log(1 + (C - 1) e^2) = {top:.6g}" in out
    assert "at K = 1: vacuous" in out


def test_empirical_prior_nulls_print_as_in_bounds(tmp_path, capsys):
    # a skewed prior: the earlier bounds are uniform-only, `n/a` in both commands' tables
    x, y = mixture(n=200, c=3)
    y = np.where(np.arange(200) < 40, 0, y)
    np.savez(tmp_path / "s.npz", x=x, y=y)
    rc, out, err = run_cli(
        capsys, "evaluate", tmp_path / "s.npz", "--k", 1, 4, "--repeats", 1, "--prior", "empirical"
    )
    assert rc == 0, err
    header, _, *rows = out.splitlines()[1:4]
    for row in rows:
        cells = dict(zip(header.split(), row.split(), strict=True))
        assert [cells[n] for n in ("arora", "nozawa_sato", "ash")] == ["n/a"] * 3
    assert "undefined" not in out
    rc, out, _ = run_cli(capsys, "bounds", "--k", 1, "--prior", "0.5,0.3,0.2", "--loss", 2)
    assert rc == 0 and out.splitlines()[-1].split()[-3:] == ["n/a"] * 3


# --------------------------------------------------------------------------- a FIFO named as input
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs os.mkfifo")
def test_a_fifo_as_features_or_labels_is_refused_unopened(tmp_path):
    # opening a FIFO blocks until a writer comes: the evaluate stage used to hang on one
    x, _ = mixture(n=40, c=4)
    np.save(tmp_path / "x.npy", x)
    os.mkfifo(tmp_path / "pipe.npz")
    os.mkfifo(tmp_path / "labels.txt")
    (tmp_path / "params.yaml").write_text(
        "evaluate:\n  features:\n    - {name: a, path: x.npy, labels: labels.txt}\n  k: [1]\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    runs = {
        "command": [sys.executable, "-m", "surrogap.cli", "evaluate", "pipe.npz", "--k", "1"],
        "stage": [
            sys.executable,
            str(ROOT / "stages" / "evaluate.py"),
            *("--params", "params.yaml", "--out", "out/external.csv", "--inputs", "."),
        ],
    }
    for name, argv in runs.items():
        done = subprocess.run(
            argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 2 and done.stdout == "", (name, done.stderr)
        assert len(done.stderr.splitlines()) == 1, done.stderr
        assert "is a FIFO, not a regular file" in done.stderr
    assert "'labels.txt' is a FIFO, not a regular file; the labels must be" in done.stderr
    assert done.stderr.startswith("stage evaluate: evaluate.features[0] ('a'): ")
    assert not (tmp_path / "out").exists()
    if Path("/dev/null").exists():  # a device: reading it would give no data, or never end
        with pytest.raises(UserError, match="'/dev/null' is a character device"):
            external.read_features("/dev/null")


def test_repeats_are_bounded(tmp_path, capsys):
    """`--repeats 1000000000` used to run for ever; at most 10,000 pairings per call."""
    from surrogap import cli

    rng = np.random.default_rng(0)
    path = tmp_path / "f.npz"
    np.savez(path, x=rng.normal(size=(40, 4)).astype(np.float32), y=np.arange(40) % 4)
    assert cli.main(["evaluate", str(path), "--k", "4", "--repeats", "1000000000"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "surrogap evaluate: argument --repeats: repeats must be an integer in 1..10000, "
        "got '1000000000'\n"
    ), err
