"""The bundled pkgdesc files (data/pkgdesc/*.jsonl.xz) are ../shared/data/pkgdesc, compressed: results
on them are results on the shared benchmark. And every compression a reader takes reads as the plain file."""

import bz2
import gzip
import lzma
import os
import shutil

import pytest
import zstandard

from rag_retrieval.data.io import iter_jsonl, load_examples
from rag_retrieval.data.mining_corpus import read_corpus
from rag_retrieval.data.sources import open_binary
from tests.conftest import ROOT, SHARED_DATA

SHARED = os.path.join(SHARED_DATA, "pkgdesc")
BUNDLED = os.path.join(ROOT, "data", "pkgdesc")


@pytest.mark.skipif(not os.path.isdir(SHARED), reason="../shared/data/pkgdesc not present")
@pytest.mark.parametrize("name", ["train.jsonl", "test.jsonl", "corpus.jsonl", "test_queries.jsonl"])
def test_bundled_files_are_the_shared_ones(name):
    with open_binary(os.path.join(BUNDLED, name + ".xz")) as ours, open(os.path.join(SHARED, name), "rb") as shared:
        assert ours.read() == shared.read()


def compress(plain: str, suffix: str) -> str:
    out = plain + suffix
    opener = {".gz": gzip.open, ".xz": lzma.open, ".bz2": bz2.open}.get(suffix)
    with open(plain, "rb") as src:
        if opener is not None:
            with opener(out, "wb") as dst:
                shutil.copyfileobj(src, dst)
        else:
            with open(out, "wb") as dst:
                zstandard.ZstdCompressor().copy_stream(src, dst)
    return out


@pytest.mark.parametrize("suffix", [".gz", ".xz", ".bz2", ".zst"])
def test_compressed_files_read_equal_to_the_plain_ones(suffix, tmp_path):
    for name in ("train.jsonl", "hits.jsonl"):
        plain = str(tmp_path / name)
        shutil.copy(os.path.join(ROOT, "data", "example", name), plain)
        packed = compress(plain, suffix)
        assert list(iter_jsonl(packed)) == list(iter_jsonl(plain))
    fmt = "pos_neg"
    a, b = load_examples(plain.replace("hits", "train"), fmt), load_examples(packed.replace("hits", "train"), fmt)
    assert a.remove_columns("where").to_list() == b.remove_columns("where").to_list()
    assert b[0]["where"] == f"{packed.replace('hits', 'train')}:1"
    corpus = tmp_path / "c.txt"
    corpus.write_text("first passage\nsecond passage\n")
    assert read_corpus(compress(str(corpus), suffix)) == ["first passage", "second passage"]


def test_a_broken_compressed_file_is_one_line(tmp_path):
    from rag_retrieval.errors import DataError

    bad = tmp_path / "train.jsonl.xz"
    bad.write_bytes(b"not xz at all\n")
    with pytest.raises(DataError, match=r"train.jsonl.xz: cannot read it as .xz data"):
        list(iter_jsonl(str(bad)))


def test_pyfunc_splits_share_no_function():
    """The second domain (data/pyfunc): dev and test functions never appear in train, as positives
    or negatives, and the files read as the training readers read them."""
    folder = os.path.join(ROOT, "data", "pyfunc")
    rows = {s: [r for _, r, errors in iter_jsonl(os.path.join(folder, f"{s}.jsonl.xz")) if not errors]
            for s in ("train", "dev", "test")}
    assert {s: len(v) for s, v in rows.items()} == {"train": 8000, "dev": 300, "test": 500}
    held = {r["pos"][0] for s in ("dev", "test") for r in rows[s]}
    train_texts = {t for r in rows["train"] for t in r["pos"] + r["neg"]}
    assert not held & train_texts
    assert not {r["query"] for r in rows["test"]} & {r["query"] for r in rows["train"]}
    assert sum(len(r["neg"]) == 30 for r in rows["test"]) >= 495  # BM25 finds fewer for a query of rare words
