"""Sentence classification corpora: ``wiki3029`` (downloaded) and ``topics`` (generated).

Both read one on-disk layout, the one of Wiki-3029 (Arora et al., ICML 2019): a tarball
(or folder) of one UTF-8 text file per class, one sentence per line. The class of a
sentence is its file; class names are the file paths without ``.txt``.

The loader (:func:`load_corpus`; docs/PROTOCOL.md): seeded class sub-sampling, a seeded
stratified split per class, torchtext's ``basic_english`` tokenizer and a vocabulary from
the training split only (:func:`build_vocab`). Output modality "text": per split
``tokens`` (total,), ``offsets`` (n,) and ``y`` (n,), all int64.

``topics`` is the offline stand-in: a seeded generator writes a corpus in the same layout
(``<raw folder>/topics-<fingerprint>.tar.gz``) and the same loader reads it back.
"""

from __future__ import annotations

import array
import gzip
import hashlib
import json
import tarfile
from collections import Counter
from io import BytesIO
from pathlib import Path
from typing import Literal

import numpy as np

from surrogap.core import io
from surrogap.core.config import model, spec
from surrogap.core.errors import UserError
from surrogap.core.prepared import Prepared
from surrogap.data import archive, check_fractions, relabel, stratified_split, subsample_classes

PAD_ID = 0
UNK_ID = 1

WIKI3029_URL = "https://nlp.cs.princeton.edu/CURL/Wiki-3029.tar.gz"
WIKI3029_NAME = "Wiki-3029.tar.gz"

# --------------------------------------------------------------------------- tokenizer
# torchtext's basic_english: lowercase; space out ' . , ( ) ! ?; drop "; ';' ':' and
# '<br />' become spaces; split on whitespace. None of the single characters occurs in
# '<br />', so one replace and one translate give exactly torchtext's sequence of regexes.
_BASIC_ENGLISH = str.maketrans(
    {
        "'": " '  ",
        '"': "",
        ".": " . ",
        ",": " , ",
        "(": " ( ",
        ")": " ) ",
        "!": " ! ",
        "?": " ? ",
        ";": " ",
        ":": " ",
    }
)


def normalize(text: str) -> str:
    """basic_english normalization of `text` (any number of lines); split() gives the tokens."""
    return text.lower().replace("<br />", " ").translate(_BASIC_ENGLISH)


def basic_english(line: str) -> list[str]:
    """torchtext's ``basic_english`` tokenizer: ``"Don't stop!"`` -> ``don ' t stop !``."""
    return normalize(line).split()


# --------------------------------------------------------------------------- corpus on disk
def read_corpus(folder: Path) -> tuple[list[str], np.ndarray, list[str], list[Path]]:
    """(normalized sentences, y (n,) int64, class names, class files) of a one-file-per-class
    folder.

    Files are read in sorted path order (class i = i-th file); hidden files are skipped;
    blank lines are not sentences. A symlink must point at a regular file inside `folder`,
    and every other entry must be a folder or a regular file: else one line naming it (a
    link to ``/proc/self/environ`` is no class file, a FIFO would block the read).
    """
    folder = Path(folder)
    top = folder.resolve()
    files = []
    for p in sorted(folder.rglob("*")):
        if any(part.startswith(".") for part in p.relative_to(folder).parts):
            continue
        if p.is_symlink():
            target = p.resolve()
            if top not in target.parents:
                raise UserError(
                    f"{str(p)!r} is a symlink to {str(target)!r}, outside the corpus folder "
                    f"{str(folder)!r}: refused (a class file must lie in the corpus folder)"
                )
            if target.is_dir():
                continue  # not descended into (rglob does not follow it)
        elif p.is_dir():
            continue
        files.append(io.regular_file(p, "a class file of the corpus"))
    if not files:
        raise UserError(f"{str(folder)!r} holds no text files (expected one file per class)")
    rel = [p.relative_to(folder).parts for p in files]
    common = 0  # strip the leading folders every file shares (the tarball's top folder)
    while all(len(r) > common + 1 for r in rel) and len({r[common] for r in rel}) == 1:
        common += 1
    names = ["/".join(r[common:]).removesuffix(".txt") for r in rel]
    total = sum(p.stat().st_size for p in files)  # read whole below: bounded first
    if total > archive.MAX_EXTRACTED_BYTES:
        raise UserError(
            f"{str(folder)!r} holds {total} bytes of text, over the limit of "
            f"{archive.MAX_EXTRACTED_BYTES} (archive.MAX_EXTRACTED_BYTES, as for an archive)"
        )
    sentences: list[str] = []
    counts = []
    for path in files:
        raw = path.read_text(encoding="utf-8", errors="replace")
        lines = [
            ln
            for ln, orig in zip(normalize(raw).split("\n"), raw.split("\n"), strict=True)
            if orig.strip()
        ]
        sentences.extend(lines)
        counts.append(len(lines))
    if not sentences:
        raise UserError(
            f"{str(folder)!r} holds no sentences: its {len(files)} class files are empty "
            "(expected one sentence per line)"
        )
    y = np.repeat(np.arange(len(files), dtype=np.int64), counts)
    return sentences, y, names, files


def build_vocab(sentences: list[str], min_freq: int) -> dict[str, int]:
    """word -> id for words seen at least `min_freq` times, most frequent first (ties: a-z).

    Ids start at 2: 0 is padding, 1 the unknown token.
    """
    counter: Counter[str] = Counter()
    for s in sentences:
        counter.update(s.split())
    kept = sorted((w for w, n in counter.items() if n >= min_freq), key=lambda w: (-counter[w], w))
    return {w: i + 2 for i, w in enumerate(kept)}


def encode(sentences: list[str], vocab: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """(tokens (total,) int64, offsets (n,) int64): each sentence's ids, concatenated."""
    tokens = array.array("q")
    offsets = np.empty(len(sentences), dtype=np.int64)
    get = vocab.get
    for i, s in enumerate(sentences):
        offsets[i] = len(tokens)
        tokens.extend([get(w, UNK_ID) for w in s.split()])
    return np.frombuffer(tokens, dtype=np.int64).copy(), offsets


def load_corpus(folder: Path, cfg: Wiki3029Config | TopicsConfig, classes: int | None) -> Prepared:
    """The shared loader of wiki3029 and topics (see the module docstring): the corpus in
    `folder`, `classes` of its classes kept (None: all), split and encoded as `cfg` says."""
    sentences, y, names, files = read_corpus(folder)
    keep, kept = subsample_classes(y, classes, cfg.seed)
    y = relabel(y[keep], kept)
    sentences = [sentences[i] for i in keep]
    where = [f"file {str(files[int(c)])!r}" for c in kept]  # a class named by its file
    parts = stratified_split(y, cfg.val_fraction, cfg.test_fraction, cfg.seed, names=where)
    vocab = build_vocab([sentences[i] for i in parts["train"]], cfg.min_freq)
    splits = {}
    for s, idx in parts.items():
        tokens, offsets = encode([sentences[i] for i in idx], vocab)
        splits[s] = {"tokens": tokens, "offsets": offsets, "y": y[idx]}
    return Prepared(
        splits=splits,
        num_classes=int(kept.size),
        modality="text",
        vocab_size=len(vocab) + 2,
        class_names=[names[int(c)] for c in kept],
        extra={
            "tokenizer": "basic_english",
            "min_freq": cfg.min_freq,
            "pad_id": PAD_ID,
            "unk_id": UNK_ID,
        },
    )


def _stem(name: str, digest: str) -> str:
    """The extraction folder's name for the archive `name`: the name without its archive
    suffix; an archive with no name of its own (``.tar.gz``, ``..tar.gz``) gets
    ``archive-<md5 prefix>``, never the raw folder itself or its parent."""
    suffixes = (".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar")
    suffix = next((s for s in suffixes if name.endswith(s)), None)
    stem = name.removesuffix(suffix) if suffix else name + ".d"
    return stem if stem.strip(".") else f"archive-{digest[:12]}"


def _corpus_folder(
    tar_path: Path, digest: str, folder: Path, ours: bool = True, max_members: int | None = None
) -> Path:
    """The extraction of `tar_path` (once per digest) into `folder`; `ours`: whether the
    archive lies in the project's raw folder (see :func:`archive.refuse`)."""
    dest = folder / _stem(tar_path.name, digest)
    return archive.extract_once(tar_path, dest, digest, ours=ours, max_members=max_members)


# --------------------------------------------------------------------------- wiki3029
@model
class Wiki3029Config:
    kind: Literal["wiki3029"] = spec("wiki3029")
    root: str | None = spec(None, allowed="null (the prepare stage's --root) or a folder path")
    url: str | None = spec(None, allowed="null or the URL of the Wiki-3029 tarball")
    md5: str | None = spec(
        None, pattern=r"^[0-9a-fA-F]{32}$", allowed="null or a 32-hex-digit MD5 of the tarball"
    )
    path: str | None = spec(None, allowed="null or a local tarball or folder (one file per class)")
    download: bool = spec(True)
    classes: int | None = spec(None, ge=2, allowed="null (all 3029) or an integer >= 2")
    val_fraction: float = spec(0.1, gt=0, lt=1)
    test_fraction: float = spec(0.2, gt=0, lt=1)
    min_freq: int = spec(5, ge=1)
    prior: Literal["uniform", "empirical"] = spec("uniform")
    seed: int = spec(0, ge=0)

    def validate(self, where: str) -> None:
        check_fractions(self.val_fraction, self.test_fraction, where)


def wiki3029_source(cfg: Wiki3029Config, root: Path) -> Path:
    """The folder of per-article text files: from `path`, or the tarball under `root`."""
    if cfg.path is not None:
        local = Path(cfg.path).expanduser()
        if local.is_dir():
            return local
        if not (local.exists() or local.is_symlink()):
            raise UserError(f"wiki3029: data.path {str(local)!r} does not exist")
        io.regular_file(local, "wiki3029's data.path (a tarball or a folder)")
        raw = archive.raw_folder(cfg.root, root)
        ours = archive.inside(local, root)  # the user's own file unless in the raw folder
        digest = archive.verify_md5(local, cfg.md5, ours=ours)
        return _corpus_folder(local, digest, raw, ours)
    name = Path(cfg.url.split("?")[0]).name if cfg.url else WIKI3029_NAME
    tar_path = archive.raw_folder(cfg.root, root) / (
        name if name not in ("", ".", "..") else WIKI3029_NAME
    )
    if not tar_path.exists() and cfg.url is None:
        raise UserError(
            f"wiki3029: archive missing: place {tar_path.name} at {str(tar_path)!r} (the Wiki-3029 "
            f"dataset of Arora et al. 2019, {WIKI3029_URL}), or set data.url (+ md5) or data.path"
        )
    ours = archive.inside(tar_path, root)  # a `root` elsewhere is the user's folder
    digest = archive.ensure(tar_path, cfg.url, cfg.md5, cfg.download, "wiki3029", ours=ours)
    return _corpus_folder(tar_path, digest, tar_path.parent, ours)


def build_wiki3029(cfg: Wiki3029Config, root: Path) -> Prepared:
    return load_corpus(wiki3029_source(cfg, root), cfg, cfg.classes)


# --------------------------------------------------------------------------- topics
@model
class TopicsConfig:
    kind: Literal["topics"] = spec("topics")
    classes: int = spec(20, ge=2)
    pool: int | None = spec(None, ge=2, allowed="null (= classes) or an integer >= classes")
    sentences_per_class: int = spec(200, ge=10)
    vocab_size: int = spec(5000, ge=10)
    topic_words: int = spec(50, ge=1)
    topic_weight: float = spec(0.2, ge=0, le=1)
    min_len: int = spec(4, ge=1)
    max_len: int = spec(24, ge=1)
    zipf: float = spec(1.1, gt=0)
    min_freq: int = spec(2, ge=1)
    val_fraction: float = spec(0.1, gt=0, lt=1)
    test_fraction: float = spec(0.2, gt=0, lt=1)
    root: str | None = spec(None, allowed="null (the prepare stage's --root) or a folder path")
    prior: Literal["uniform", "empirical"] = spec("uniform")
    seed: int = spec(0, ge=0)

    def memory(self) -> tuple[int, str]:
        """About the peak bytes of one build: the tokenized corpus (int64 ids and the words
        while tokenizing: measured under 30 bytes per token at max_len, so 50) and the
        vocabulary's arrays."""
        tokens = (self.pool or self.classes) * self.sentences_per_class * self.max_len
        return 50 * tokens + 64 * self.vocab_size, (
            f"classes x sentences_per_class x max_len = {self.pool or self.classes} x "
            f"{self.sentences_per_class} x {self.max_len} tokens and vocab_size {self.vocab_size}"
        )

    def validate(self, where: str) -> None:
        check_fractions(self.val_fraction, self.test_fraction, where)
        if self.pool is not None and self.pool < self.classes:
            raise UserError(
                f"{where}.pool: got {self.pool}, allowed: null or >= classes ({self.classes})"
            )
        if self.max_len < self.min_len:
            raise UserError(
                f"{where}.max_len: got {self.max_len}, allowed: >= min_len ({self.min_len})"
            )
        if self.topic_words > self.vocab_size:
            raise UserError(
                f"{where}.topic_words: got {self.topic_words}, allowed: <= vocab_size ({self.vocab_size})"
            )

    @property
    def generated(self) -> int:
        """How many topics the corpus holds (``classes`` of them are kept)."""
        return self.pool if self.pool is not None else self.classes


_CONSONANTS = "bdfgklmnprstvz"
_VOWELS = "aeiou"
_SYLLABLES = [c + v for c in _CONSONANTS for v in _VOWELS]  # 70


def pseudo_word(i: int) -> str:
    """A distinct pronounceable lowercase word for each i >= 0 (two syllables or more)."""
    n, base, out = i + len(_SYLLABLES), len(_SYLLABLES), []
    while n:
        n, r = divmod(n, base)
        out.append(_SYLLABLES[r])
    return "".join(reversed(out))


def topic_sentences(
    cfg: TopicsConfig, topic: int, words: np.ndarray, background: np.ndarray
) -> list[str]:
    """The sentences of one topic; seeded by (seed, topic) alone, so a topic's text does not
    depend on how many topics are generated.

    Each token is, with probability ``topic_weight``, a draw from the topic's own words (a
    Zipfian over ``topic_words`` words chosen uniformly from the vocabulary), otherwise a
    draw from the shared Zipfian background over the whole vocabulary.
    """
    rng = np.random.default_rng([cfg.seed, topic])
    own = rng.choice(cfg.vocab_size, size=cfg.topic_words, replace=False)
    own_p = 1.0 / np.arange(1, cfg.topic_words + 1) ** cfg.zipf
    lengths = rng.integers(cfg.min_len, cfg.max_len + 1, size=cfg.sentences_per_class)
    total = int(lengths.sum())
    from_topic = rng.random(total) < cfg.topic_weight
    ids = rng.choice(cfg.vocab_size, size=total, p=background)
    ids[from_topic] = own[
        rng.choice(cfg.topic_words, size=int(from_topic.sum()), p=own_p / own_p.sum())
    ]
    tokens = words[ids]
    out, start = [], 0
    for n in lengths.tolist():
        sentence = " ".join(tokens[start : start + n].tolist())
        out.append(sentence[:1].upper() + sentence[1:] + ".")
        start += n
    return out


def _add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    """Add `data` as the file `name` (TarInfo's defaults: mtime 0, mode 0644, owner 0)."""
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, fileobj=BytesIO(data))


def write_topics_corpus(cfg: TopicsConfig, path: Path) -> Path:
    """Generate the corpus and write it atomically as a tar.gz (byte-identical per config):
    ``topics/topic-<i>.txt``, one sentence per line."""
    ranks = np.arange(1, cfg.vocab_size + 1, dtype=np.float64)
    background = 1.0 / ranks**cfg.zipf
    background /= background.sum()
    words = np.array([pseudo_word(i) for i in range(cfg.vocab_size)])
    width = len(str(cfg.generated - 1))

    def writer(tmp: Path) -> None:
        with (
            open(tmp, "wb") as raw,
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=1) as gz,
            tarfile.open(fileobj=gz, mode="w", format=tarfile.USTAR_FORMAT) as tar,
        ):
            for t in range(cfg.generated):
                text = "\n".join(topic_sentences(cfg, t, words, background)) + "\n"
                _add_member(tar, f"topics/topic-{t:0{width}d}.txt", text.encode())

    io.write_with(path, writer)
    return path


def _generator_fingerprint(cfg: TopicsConfig) -> str:
    keys = (
        "sentences_per_class",
        "vocab_size",
        "topic_words",
        "topic_weight",
        "min_len",
        "max_len",
        "zipf",
        "seed",
    )
    params = {k: getattr(cfg, k) for k in keys} | {"topics": cfg.generated, "format": 1}
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]


def build_topics(cfg: TopicsConfig, root: Path) -> Prepared:
    tar_path = archive.raw_folder(cfg.root, root) / f"topics-{_generator_fingerprint(cfg)}.tar.gz"
    write_topics_corpus(cfg, tar_path)
    # generated here, one member per topic: as many topics as the config asks may come out
    members = max(archive.MAX_MEMBERS, cfg.generated)
    folder = _corpus_folder(tar_path, archive.md5sum(tar_path), tar_path.parent, True, members)
    prepared = load_corpus(folder, cfg, None if cfg.pool is None else cfg.classes)
    prepared.extra["corpus"] = tar_path.name
    return prepared


KINDS = {
    "wiki3029": (Wiki3029Config, build_wiki3029),
    "topics": (TopicsConfig, build_topics),
}
