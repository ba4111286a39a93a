"""rag-retrieval mine: BM25 / dense / fused / random negatives, ranges, false-negative filter, errors."""

import json
import os

import pytest

from rag_retrieval.data.io import iter_jsonl
from rag_retrieval.data.mining import MineOptions, mine_file, read_corpus
from rag_retrieval.data.tools import InputError

from tests.helpers import cli_rc

from .test_tools import write

CORPUS = [
    "Firefox is a free and open source web browser from Mozilla.",
    "Chromium is an open source web browser project.",
    "Lynx is a text mode web browser for the terminal.",
    "GCC is the GNU compiler collection for C and C++.",
    "Clang is a C language family compiler front end for LLVM.",
    "ImageMagick can resize, crop and convert images from the command line.",
    "GIMP is an image editor for photo retouching.",
    "Vim is a highly configurable text editor.",
    "Emacs is an extensible text editor.",
    "Bash is the GNU shell, a command language interpreter.",
    "  FIREFOX is a free and open source web browser from   Mozilla.",  # duplicate of the first up to case/space
]
PAIRS = [
    {"query": "open source web browser", "pos": [CORPUS[0]]},
    {"query": "C compiler", "pos": [CORPUS[3]]},
    {"query": "resize images on the command line", "pos": [CORPUS[5]]},
    {"query": "text editor", "pos": [CORPUS[7]]},
]


def corpus_file(tmp_path, texts=CORPUS):
    return write(tmp_path / "corpus.jsonl", [{"id": str(i), "text": t} for i, t in enumerate(texts)])


def records(path):
    return [r for _, r, _ in iter_jsonl(path)]


def test_bm25_mines_ranked_non_positive_negatives(tmp_path):
    pairs, out = write(tmp_path / "pairs.jsonl", PAIRS), str(tmp_path / "mined.jsonl")
    stats = mine_file(pairs, "pos_neg", out, MineOptions(corpus=corpus_file(tmp_path), method="bm25", negatives=2,
                                                         rank_range=(1, 5), margin=None, show_progress=False))
    mined = records(out)
    assert [r["query"] for r in mined] == [p["query"] for p in PAIRS]
    browser = mined[0]
    assert browser["pos"] == [CORPUS[0]]
    # the two other browsers share the most terms; the case/space copy of the positive is no negative
    assert browser["neg"] == [CORPUS[1], CORPUS[2]]
    assert mined[1]["neg"][0] == CORPUS[4]  # the other C compiler
    assert stats.corpus_duplicates_merged == 1 and stats.queries == 4 and stats.corpus == 10
    assert stats.positive_mrr_at_10 >= 0.75  # vim vs emacs: the shorter editor text wins under BM25
    for r, p in zip(mined, PAIRS):
        assert not set(r["neg"]) & set(p["pos"]) and len(r["neg"]) == len(set(r["neg"]))


def test_rank_range_skips_the_hardest(tmp_path):
    pairs, out = write(tmp_path / "pairs.jsonl", PAIRS[:1]), str(tmp_path / "mined.jsonl")
    mine_file(pairs, "pos_neg", out, MineOptions(corpus=corpus_file(tmp_path), method="bm25", negatives=5,
                                                 rank_range=(2, 2), margin=None, show_progress=False))
    assert records(out)[0]["neg"] == [CORPUS[2]]  # rank 2 only


def test_false_negative_filter_drops_candidates_scoring_like_the_positive(tmp_path):
    # the query's terms are all in a near-copy of the positive that is not a duplicate
    texts = CORPUS[:10] + ["Firefox is an open source web browser."]
    pairs = write(tmp_path / "pairs.jsonl", [{"query": "firefox open source web browser", "pos": [CORPUS[1]]}])
    out_all, out_kept = str(tmp_path / "all.jsonl"), str(tmp_path / "kept.jsonl")
    mine_file(pairs, "pos_neg", out_all, MineOptions(corpus=corpus_file(tmp_path, texts), negatives=3,
                                                     rank_range=(1, 3), show_progress=False))  # no filter by default
    stats = mine_file(pairs, "pos_neg", out_kept, MineOptions(corpus=corpus_file(tmp_path, texts), negatives=3,
                                                              rank_range=(1, 3), margin=0.0, show_progress=False))
    above = {CORPUS[0], texts[10]}  # both name firefox: they outscore the positive (Chromium)
    assert above <= set(records(out_all)[0]["neg"])
    assert not above & set(records(out_kept)[0]["neg"])
    assert stats.dropped_as_false_negative == 2
    rel = str(tmp_path / "rel.jsonl")
    # the relative margin also drops what scores above half the positive
    stats = mine_file(pairs, "pos_neg", rel, MineOptions(corpus=corpus_file(tmp_path, texts), negatives=3,
                                                         rank_range=(1, 3), relative_margin=0.5, show_progress=False))
    assert stats.dropped_as_false_negative >= 2 and not above & set(records(rel)[0]["neg"])


def test_dense_mining_with_minilm_torch_and_faiss_agree(tmp_path):
    pairs, corpus = write(tmp_path / "pairs.jsonl", PAIRS), corpus_file(tmp_path)
    outs = {}
    for index in ("torch", "faiss"):
        if index == "faiss":
            pytest.importorskip("faiss")
        outs[index] = str(tmp_path / f"{index}.jsonl")
        stats = mine_file(pairs, "pos_neg", outs[index], MineOptions(corpus=corpus, method="dense", model="minilm",
                                                                     negatives=2, rank_range=(1, 4), index=index,
                                                                     show_progress=False))
        assert stats.positive_mrr_at_10 >= 0.75  # zero-shot MiniLM: Emacs and Vim are close
    assert records(outs["torch"]) == records(outs["faiss"])
    mined = records(outs["torch"])
    assert set(mined[0]["neg"]) == {CORPUS[1], CORPUS[2]}  # the other browsers
    assert set(mined[3]["neg"]) <= {CORPUS[8], CORPUS[6], CORPUS[9], CORPUS[2]}
    assert CORPUS[8] in mined[3]["neg"]  # the other text editor


def test_fused_and_random_methods(tmp_path):
    pairs, corpus = write(tmp_path / "pairs.jsonl", PAIRS), corpus_file(tmp_path)
    fused = str(tmp_path / "fused.jsonl")
    stats = mine_file(pairs, "pos_neg", fused, MineOptions(corpus=corpus, method="bm25+dense", negatives=2,
                                                           rank_range=(1, 4), margin=0.0, show_progress=False))
    # filtered by both methods' scores
    assert records(fused)[0]["neg"][0] in (CORPUS[1], CORPUS[2]) and stats.positive_mrr_at_10 >= 0.75
    runs = []
    for name in ("r1", "r2"):
        out = str(tmp_path / f"{name}.jsonl")
        stats = mine_file(pairs, "pos_neg", out, MineOptions(corpus=corpus, method="random", negatives=3, seed=7,
                                                             show_progress=False))
        runs.append(records(out))
    assert runs[0] == runs[1]  # seeded
    assert stats.negatives_per_query == {"min": 3, "mean": 3.0, "max": 3}
    for r, p in zip(runs[0], PAIRS):
        assert not set(r["neg"]) & set(p["pos"]) and len(set(r["neg"])) == 3


def test_exclude_keeps_eval_positives_out_and_other_formats_read(tmp_path):
    hits = write(tmp_path / "hits.jsonl", [{"query": "open source web browser",
                                            "hits": [{"content": CORPUS[0], "label": 1}, {"content": CORPUS[9],
                                                                                          "label": 0}]}])
    held = write(tmp_path / "eval.jsonl", [{"query": "text mode browser", "pos": [CORPUS[2]]}])
    out = str(tmp_path / "mined.jsonl")
    stats = mine_file(hits, "hits", out, MineOptions(corpus=corpus_file(tmp_path), negatives=5, rank_range=(1, 10),
                                                     exclude=held, margin=None, show_progress=False))
    assert CORPUS[2] not in records(out)[0]["neg"] and stats.excluded_passages == 1
    assert records(out)[0]["pos"] == [CORPUS[0]]


def test_an_excluded_text_that_is_also_a_train_positive_is_no_other_querys_negative(tmp_path):
    pairs = write(tmp_path / "pairs.jsonl", [{"query": "text mode browser", "pos": [CORPUS[2]]},
                                             {"query": "open source web browser", "pos": [CORPUS[0]]}])
    held = write(tmp_path / "eval.jsonl", [{"query": "lynx", "pos": [CORPUS[2]]}])
    out = str(tmp_path / "mined.jsonl")
    mine_file(pairs, "pos_neg", out, MineOptions(corpus=corpus_file(tmp_path), negatives=9, rank_range=(1, 20),
                                                 exclude=held, show_progress=False))
    mined = records(out)
    assert mined[0]["pos"] == [CORPUS[2]]  # still the positive of its own query
    assert CORPUS[2] not in mined[1]["neg"]  # but never mined for another one


def test_bad_input_fails_with_file_line_and_writes_nothing(tmp_path, capsys):
    pairs = write(tmp_path / "pairs.jsonl", PAIRS)
    bad_corpus = write(tmp_path / "c.jsonl", [{"text": "ok"}, {"id": 1}, b"\xff", {"text": ""}])
    out = str(tmp_path / "mined.jsonl")
    with pytest.raises(InputError) as err:
        mine_file(pairs, "pos_neg", out, MineOptions(corpus=bad_corpus, show_progress=False))
    assert f"{bad_corpus}:2: text: missing" in str(err.value)
    assert f"{bad_corpus}:3: line: not valid UTF-8" in str(err.value)
    assert f"{bad_corpus}:4: text: expected a non-empty string" in str(err.value)
    bad_pairs = write(tmp_path / "bad.jsonl", [PAIRS[0], {"query": "q"}])
    with pytest.raises(InputError, match=f"{bad_pairs}:2: pos: missing"):
        mine_file(bad_pairs, "pos_neg", out, MineOptions(show_progress=False))
    assert not os.path.exists(out)
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]
    assert cli_rc(["mine", pairs, out, "--format", "pos_neg", "--range", "5-2"]) == \
        "error: --range '5-2': expected FIRST-LAST with 1 <= FIRST <= LAST, e.g. 10-100"
    assert not os.path.exists(out)


def test_cli_writes_summary_and_never_overwrites(tmp_path, capsys):
    pairs, corpus = write(tmp_path / "pairs.jsonl", PAIRS), corpus_file(tmp_path)
    out, summary = str(tmp_path / "mined.jsonl"), str(tmp_path / "summary.json")
    assert cli_rc(["mine", pairs, out, "--format", "pos_neg", "--corpus", corpus, "--negatives", "2",
                   "--json", summary]) == 0
    printed = capsys.readouterr().out
    assert "negatives_per_query" in printed and "dropped_as_false_negative" in printed
    assert json.load(open(summary))["queries"] == 4
    before = open(out).read()
    assert cli_rc(["mine", pairs, out, "--format", "pos_neg", "--corpus", corpus]) == \
        f"error: {out} exists; pass --overwrite to replace it"
    assert open(out).read() == before


def test_read_corpus_plain_text_and_titles(tmp_path):
    txt = tmp_path / "c.txt"
    txt.write_text("first passage\n\nsecond passage\n")
    assert read_corpus(str(txt)) == ["first passage", "second passage"]
    beir = write(tmp_path / "b.jsonl", [{"_id": "1", "title": "Firefox", "text": "A browser."}])
    assert read_corpus(beir) == ["Firefox A browser."]
