"""Text datasets: wiki3029 from a Wiki-3029-style tarball built here, the basic_english
tokenizer, the min_freq vocabulary, and the generated topics corpus."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import WIKI_PREPARE
from scipy.sparse import csr_matrix
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from surrogap import data
from surrogap.core import prepared as core_prepared
from surrogap.core.errors import UserError
from surrogap.data import archive, kinds, text
from surrogap.models import inputs

torch.set_num_threads(1)

ARTICLES = 6
SENTENCES = 30
RARE = "zyzzyva"  # 3 times in the whole corpus: below min_freq 5 whatever the split


def _article_lines(k: int) -> list[str]:
    """Every sentence has 'the' twice, its article's own five words and a number."""
    rng = np.random.default_rng(k)
    lines = []
    for i in range(SENTENCES):
        own = " ".join(f"Word{k}x{j}" for j in rng.permutation(5))
        rare = f" {RARE}" if k == 0 and i < 3 else ""
        lines.append(f"The {own}, the (n{i % 3}){rare}!")
    return lines


def make_wiki(path: Path, articles: int = ARTICLES) -> Path:
    """A Wiki-3029-style tarball: one text file per article under a top folder, blank lines
    and a hidden file included (neither is a sentence or a class)."""
    with tarfile.open(path, "w:gz") as tar:
        for k in range(articles):
            body = ("\n".join(_article_lines(k)) + "\n\n").encode()
            info = tarfile.TarInfo(f"Wiki-3029/Article_{k:02d}.txt")
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
        junk = tarfile.TarInfo("Wiki-3029/.DS_Store")
        junk.size = 3
        tar.addfile(junk, io.BytesIO(b"xyz"))
    return path


def _wiki(root: Path, **params) -> core_prepared.Prepared:
    cfg = kinds.parse_data_config({"kind": "wiki3029", **params}, "wiki.data")
    return kinds.build(cfg, root)


def _sequences(split: dict[str, np.ndarray]) -> list[np.ndarray]:
    ends = np.append(split["offsets"][1:], split["tokens"].size)
    return [split["tokens"][a:b] for a, b in zip(split["offsets"], ends, strict=True)]


def test_basic_english_matches_torchtext():
    # torchtext.data.utils.get_tokenizer("basic_english") on the same line
    line = 'Don\'t STOP, (ok)!<br />Yes: no; "quoted"? 3.5'
    assert text.basic_english(line) == [
        "don", "'", "t", "stop", ",", "(", "ok", ")", "!", "yes", "no", "quoted", "?", "3", ".", "5",
    ]  # fmt: skip
    assert text.basic_english("You can now install TorchText using pip!") == [
        "you", "can", "now", "install", "torchtext", "using", "pip", "!",
    ]  # fmt: skip


def test_wiki3029_from_local_tarball(tmp_path):
    tar = make_wiki(tmp_path / "wiki.tar.gz")
    p = _wiki(tmp_path, path=str(tar), min_freq=5, seed=1)
    assert p.modality == "text" and p.num_classes == ARTICLES
    assert p.class_names == [f"Article_{k:02d}" for k in range(ARTICLES)]
    # 70/10/20 per class
    for s, n in (("train", 21), ("val", 3), ("test", 6)):
        y = p.splits[s]["y"]
        assert np.bincount(y, minlength=ARTICLES).tolist() == [n] * ARTICLES
    # tokens/offsets/y consistent; every sentence tokenizes to 12 tokens (13 with the rare word)
    for s in core_prepared.SPLITS:
        split = p.splits[s]
        assert split["tokens"].dtype == np.int64 and split["offsets"].dtype == np.int64
        assert split["offsets"][0] == 0 and np.all(np.diff(split["offsets"]) > 0)
        assert split["offsets"].size == split["y"].size
        assert split["tokens"].min() >= 1 and split["tokens"].max() < p.vocab_size
        lengths = np.diff(np.append(split["offsets"], split["tokens"].size))
        assert set(lengths.tolist()) <= {12, 13}
        for seq in _sequences(split):
            assert (seq == 2).sum() == 2  # "the": the most frequent word has id 2
    # only the rare word maps to the unknown token, three times in all
    unk = sum(int((p.splits[s]["tokens"] == text.UNK_ID).sum()) for s in core_prepared.SPLITS)
    assert unk == 3
    # vocabulary: pad, unk; the , ( ) !; n0 n1 n2; 6 x 5 article words
    assert p.vocab_size == 2 + 5 + 3 + ARTICLES * 5
    # the same word has one id in every split: article 0's words appear in train and test
    train0 = set(p.splits["train"]["tokens"][: p.splits["train"]["offsets"][21]].tolist())
    test0 = set(p.splits["test"]["tokens"][: p.splits["test"]["offsets"][6]].tolist())
    assert test0 <= train0


def test_wiki3029_min_freq(tmp_path):
    tar = make_wiki(tmp_path / "wiki.tar.gz")
    everything = _wiki(tmp_path, path=str(tar), min_freq=1)
    assert (everything.splits["train"]["tokens"] == text.UNK_ID).sum() == 0
    assert everything.vocab_size > _wiki(tmp_path, path=str(tar), min_freq=5).vocab_size
    nothing = _wiki(tmp_path, path=str(tar), min_freq=10_000)
    assert nothing.vocab_size == 2
    assert all(np.all(nothing.splits[s]["tokens"] == text.UNK_ID) for s in core_prepared.SPLITS)


def test_wiki3029_class_subsampling_and_folder_path(tmp_path):
    tar = make_wiki(tmp_path / "wiki.tar.gz")
    folder = tmp_path / "extracted"
    archive.safe_extract(tar, folder)
    p = _wiki(tmp_path, path=str(folder), classes=3, seed=2)
    q = _wiki(tmp_path, path=str(tar), classes=3, seed=2)
    assert p.num_classes == 3 and p.class_names == q.class_names
    assert set(p.class_names) < {f"Article_{k:02d}" for k in range(ARTICLES)}
    assert sum(p.splits[s]["y"].size for s in core_prepared.SPLITS) == 3 * SENTENCES
    assert np.array_equal(p.splits["test"]["tokens"], q.splits["test"]["tokens"])
    with pytest.raises(UserError, match=r"data\.classes: got 7, allowed: 2\.\.6"):
        _wiki(tmp_path, path=str(tar), classes=7)
    with pytest.raises(UserError, match="classes"):
        _wiki(tmp_path, path=str(tar), classes=1)


def test_wiki3029_download_with_md5(tmp_path):
    mirror = make_wiki(tmp_path / "Wiki-3029.tar.gz")
    md5 = archive.md5sum(mirror)
    root = tmp_path / "project"
    p = _wiki(root, url=mirror.as_uri(), md5=md5)
    assert p.num_classes == ARTICLES
    assert (root / "Wiki-3029.tar.gz").exists()
    assert (root / "Wiki-3029").is_dir()
    with pytest.raises(UserError, match="checksum"):
        _wiki(tmp_path / "other", url=mirror.as_uri(), md5="0" * 32)


def test_wiki3029_missing_archive_is_one_line(tmp_path):
    with pytest.raises(UserError) as err:
        _wiki(tmp_path)
    msg = str(err.value)
    assert "\n" not in msg and "missing" in msg
    assert str(tmp_path / "Wiki-3029.tar.gz") in msg
    assert "Arora" in msg and text.WIKI3029_URL in msg
    with pytest.raises(UserError, match="does not exist"):
        _wiki(tmp_path, path="nowhere.tar.gz")


def test_wiki3029_refuses_path_traversal(tmp_path):
    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as tar:
        info = tarfile.TarInfo("../evil.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"x\n"))
    with pytest.raises(UserError, match=r"'\.\./evil\.txt'"):
        _wiki(tmp_path / "sub", path=str(evil))
    assert not (tmp_path / "evil.txt").exists()


def test_text_round_trip_and_split_inputs(tmp_path):
    tar = make_wiki(tmp_path / "wiki.tar.gz")
    p = _wiki(tmp_path, path=str(tar))
    out = tmp_path / "prepared" / "wiki"
    core_prepared.write_prepared(p, "wiki", "wiki3029", "uniform", out)
    ds = inputs.load_prepared(out)
    assert ds.meta["modality"] == "text" and ds.meta["vocab_size"] == p.vocab_size
    assert ds.meta["class_names"] == p.class_names and ds.num_classes == ARTICLES
    split = ds.splits["val"]
    idx = torch.tensor([5, 0, 17])
    tokens, offsets = split.inputs(idx)
    want = _sequences(p.splits["val"])
    assert offsets.tolist() == [0, len(want[5]), len(want[5]) + len(want[0])]
    assert tokens.tolist() == [*want[5].tolist(), *want[0].tolist(), *want[17].tolist()]


# --------------------------------------------------------------------------- topics
def _topics(root: Path, **params) -> core_prepared.Prepared:
    cfg = kinds.parse_data_config({"kind": "topics", **params}, "topics.data")
    return kinds.build(cfg, root)


def _bag_of_words(split: dict[str, np.ndarray], vocab: int):
    lengths = np.diff(np.append(split["offsets"], split["tokens"].size))
    rows = np.repeat(np.arange(split["y"].size), lengths)
    counts = csr_matrix(
        (np.ones(rows.size), (rows, split["tokens"])), shape=(split["y"].size, vocab)
    )
    return counts, split["y"]


def test_topics_deterministic_per_seed(tmp_path):
    params = {"classes": 5, "sentences_per_class": 40, "vocab_size": 300}
    a, b = _topics(tmp_path / "a", **params), _topics(tmp_path / "b", **params)
    (ta,) = (tmp_path / "a").glob("topics-*.tar.gz")
    (tb,) = (tmp_path / "b").glob("topics-*.tar.gz")
    assert ta.name == tb.name and ta.read_bytes() == tb.read_bytes()
    for s in core_prepared.SPLITS:
        assert all(
            np.array_equal(a.splits[s][k], b.splits[s][k]) for k in ("tokens", "offsets", "y")
        )
    _topics(tmp_path / "a", **params, seed=1)
    other = sorted((tmp_path / "a").glob("topics-*.tar.gz"))
    assert len(other) == 2 and other[0].read_bytes() != other[1].read_bytes()
    # the corpus is in the Wiki-3029 layout: wiki3029 reads it as is
    w = _wiki(tmp_path, path=str(ta), min_freq=2)
    assert w.class_names == a.class_names == [f"topic-{i}" for i in range(5)]
    assert np.array_equal(w.splits["train"]["tokens"], a.splits["train"]["tokens"])


def test_topics_separable_but_not_trivially(tmp_path):
    p = _topics(tmp_path, classes=20, sentences_per_class=100)
    x_train, y_train = _bag_of_words(p.splits["train"], p.vocab_size)
    x_test, y_test = _bag_of_words(p.splits["test"], p.vocab_size)
    with threadpool_limits(1):  # BLAS threads fight over the shared cores otherwise
        acc = LogisticRegression(max_iter=500).fit(x_train, y_train).score(x_test, y_test)
    assert 0.4 < acc < 0.98  # chance is 0.05


def test_topics_thousands_of_classes_and_pool(tmp_path):
    p = _topics(tmp_path, classes=2000, sentences_per_class=15, max_len=12)
    assert p.num_classes == 2000
    assert np.bincount(p.splits["val"]["y"]).tolist() == [2] * 2000
    # a topic's text does not depend on how many topics are generated
    small = _topics(tmp_path / "s", classes=3, pool=40, sentences_per_class=15, max_len=12, seed=0)
    assert small.num_classes == 3 and set(small.class_names) < {f"topic-{i:02d}" for i in range(40)}
    big = sorted(tmp_path.glob("topics-*"))
    few = sorted((tmp_path / "s").glob("topics-*"))
    big_dir, few_dir = next(d for d in big if d.is_dir()), next(d for d in few if d.is_dir())
    assert (big_dir / "topics" / "topic-0007.txt").read_bytes() == (
        few_dir / "topics" / "topic-07.txt"
    ).read_bytes()


@pytest.mark.parametrize(
    "params, needle",
    [
        ({"classes": 5, "pool": 3}, "pool"),
        ({"min_len": 9, "max_len": 3}, "max_len"),
        ({"vocab_size": 20, "topic_words": 50}, "topic_words"),
        ({"classes": 1}, "classes"),
        ({"topic_weight": 1.5}, "topic_weight"),
        ({"sentence_per_class": 5}, "did you mean 'sentences_per_class'"),
    ],
)
def test_topics_config_errors(params, needle):
    with pytest.raises(UserError, match=needle):
        kinds.parse_data_config({"kind": "topics", **params}, "topics.data")


# --------------------------------------------------------------------------- user's archives
def _prepare_stage(project: Path, params: str | dict) -> tuple[int, str]:
    """Run stages/prepare.py for the dataset `wiki` as `dvc repro` would, in the project
    folder `project` (raw folder data/raw); return (exit status, stderr)."""
    (project / "data" / "raw").mkdir(parents=True, exist_ok=True)
    if isinstance(params, dict):
        params = yaml.safe_dump({"dataset": ["wiki"], "seed": [0], "wiki": {"data": params}})
    (project / "params.yaml").write_text(params)
    script = Path(__file__).resolve().parents[1] / "stages" / "prepare.py"
    env = {**os.environ, "PYTHONPATH": str(Path(data.__file__).resolve().parents[2])}
    done = subprocess.run(
        [sys.executable, str(script), *WIKI_PREPARE],
        cwd=project,
        capture_output=True,
        text=True,
        env=env,
    )
    return done.returncode, done.stderr


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()}


def test_archives_given_by_path_are_never_moved(tmp_path):
    """A wrong md5 or a truncated archive given by `path` is refused with one line and left
    exactly where it was: no rename, no `.corrupt` beside it, in a read-only folder too."""
    mine = tmp_path / "mine"
    mine.mkdir()
    good = make_wiki(mine / "Wiki-3029.tar.gz")
    cut = mine / "cut.tar.gz"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    mine.chmod(0o555)  # read-only (root ignores it: the snapshot below is the real check)
    try:
        before = _snapshot(mine)
        cases = [
            ({"path": str(good), "md5": "0" * 32}, "fails its checksum"),
            ({"path": str(cut)}, "truncated or corrupt"),
        ]
        for block, needle in cases:
            status, err = _prepare_stage(tmp_path / "project", {"kind": "wiki3029", **block})
            lines = err.strip().splitlines()
            assert status == 2 and len(lines) == 1, err
            assert needle in lines[0] and "left where it is" in lines[0], err
            assert _snapshot(mine) == before
        assert not (tmp_path / "project" / "data" / "prepared").exists()
    finally:
        mine.chmod(0o755)


def test_an_archive_without_a_stem_never_replaces_the_raw_folder(tmp_path):
    """`.tar.gz` names no folder: it is extracted to data/raw/archive-<md5>, and the other
    datasets' raw files in data/raw stay."""
    raw = tmp_path / "project" / "data" / "raw"
    raw.mkdir(parents=True)
    (raw / "cifar-10-python.tar.gz").write_bytes(b"another dataset")
    nameless = make_wiki(tmp_path / ".tar.gz")
    status, err = _prepare_stage(tmp_path / "project", {"kind": "wiki3029", "path": str(nameless)})
    assert status == 0, err
    digest = archive.md5sum(nameless)
    assert sorted(p.name for p in raw.iterdir()) == [
        f"archive-{digest[:12]}",
        "cifar-10-python.tar.gz",
    ]
    assert (raw / "cifar-10-python.tar.gz").read_bytes() == b"another dataset"
    assert (
        text._stem(".tar.gz", digest) == text._stem("..tar.gz", digest) == f"archive-{digest[:12]}"
    )
    assert text._stem("Wiki-3029.tar.gz", digest) == "Wiki-3029"


def test_unquoted_digit_md5_says_quote_it(tmp_path):
    """YAML reads md5: 0123... as a number (its digits are lost): one line saying to quote it."""
    params = (
        "dataset: [wiki]\nseed: [0]\nwiki:\n  data: {kind: wiki3029, path: x.tar.gz, md5: %s}\n"
    )
    status, err = _prepare_stage(tmp_path, params % ("1" * 32))
    lines = err.strip().splitlines()
    assert status == 2 and len(lines) == 1, err
    assert "wiki.data.md5: got the number 1111" in lines[0] and "quote it" in lines[0]
    assert sorted(p.name for p in (tmp_path / "data").rglob("*")) == ["raw"]  # nothing written


def test_a_corpus_folder_names_its_bad_files(tmp_path):
    """Through stages/prepare.py with a corpus folder as data.path: a symlink out of the
    folder (to /proc/self/environ: its size reads 0, its text is the environment), a FIFO
    (reading it would block) and an empty corpus are refused in one line naming the file;
    a class with too few sentences names its file; a symlink to a class file inside the
    folder is read as before."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    for k in range(3):
        (folder / f"Article_{k}.txt").write_text("\n".join(_article_lines(k)) + "\n")
    project = tmp_path / "project"
    block = {"kind": "wiki3029", "path": str(folder)}
    (folder / "env.txt").symlink_to("/proc/self/environ")
    status, err = _prepare_stage(project, block)
    lines = err.strip().splitlines()
    assert status == 2 and len(lines) == 1, err
    assert lines[0].startswith(f"stage prepare: {str(folder / 'env.txt')!r} is a symlink to "), err
    assert f"outside the corpus folder {str(folder)!r}: refused" in lines[0], err
    (folder / "env.txt").unlink()
    os.mkfifo(folder / "pipe.txt")
    status, err = _prepare_stage(project, block)
    assert status == 2 and err.strip() == (
        f"stage prepare: {str(folder / 'pipe.txt')!r} is a FIFO, not a regular file; "
        "a class file of the corpus must be a regular file"
    ), err
    (folder / "pipe.txt").unlink()
    (folder / "short.txt").write_text("One sentence only.\n")
    status, err = _prepare_stage(project, block)
    assert status == 2 and len(err.strip().splitlines()) == 1, err
    assert f"class 3 (file {str(folder / 'short.txt')!r}) has 1 samples: too few" in err, err
    (folder / "short.txt").unlink()
    (folder / "same.txt").symlink_to("Article_0.txt")  # inside: a class file like the others
    status, err = _prepare_stage(project, block)
    assert status == 0, err
    meta = (project / "data" / "prepared" / "wiki" / "s0" / "meta.json").read_text()
    assert '"same"' in meta and '"num_classes": 4' in meta.replace("\n", " ").replace("  ", " ")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "a.txt").write_text("\n\n")
    status, err = _prepare_stage(project, {"kind": "wiki3029", "path": str(empty)})
    assert status == 2 and err.strip() == (
        f"stage prepare: {str(empty)!r} holds no sentences: its 1 class files are empty "
        "(expected one sentence per line)"
    ), err


def test_a_generated_corpus_is_not_bound_by_the_member_count(tmp_path, monkeypatch):
    """MAX_MEMBERS bounds archives from outside: the topics corpus is written here with one
    member per topic, so every topic the config asks for comes out; a Wiki tarball of more
    members than the limit is refused."""
    monkeypatch.setattr(archive, "MAX_MEMBERS", 5)
    cfg = kinds.parse_data_config(
        {"kind": "topics", "classes": 8, "sentences_per_class": 20}, "topics.data"
    )
    assert kinds.build(cfg, tmp_path / "raw").num_classes == 8
    tar = make_wiki(tmp_path / "Wiki-3029.tar.gz")  # 6 articles and a hidden file
    with pytest.raises(UserError, match=r"more than 5 members \(archive.MAX_MEMBERS"):
        _wiki(tmp_path / "raw", path=str(tar))
