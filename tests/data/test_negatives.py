"""data.negatives: bm25: each query's negatives mined again from the training documents when they are read."""

import pytest

from rag_retrieval.config import ConfigError
from rag_retrieval.data import load_examples
from rag_retrieval.data.io import text_hash
from rag_retrieval.data.mining import MineOptions, mine_file
from rag_retrieval.data.negatives import remine_negatives
from rag_retrieval.train.reranker import main
from tests.conftest import tiny_args

from .test_mining import CORPUS
from .test_tools import write

CFG = "configs/tests/reranker_tiny.yaml"
RECORDS = [
    {"query": "open source web browser", "pos": [CORPUS[0]], "neg": [CORPUS[9]]},
    {"query": "C compiler", "pos": [CORPUS[3]], "neg": [CORPUS[1], CORPUS[2]]},
    {"query": "resize images on the command line", "pos": [CORPUS[5]], "neg": [CORPUS[4], CORPUS[6]]},
    {"query": "text editor", "pos": [CORPUS[7]], "neg": [CORPUS[8]]},
    {"query": "GNU shell", "pos": [CORPUS[9]], "neg": [CORPUS[0]]},
]


def test_the_same_negatives_as_the_miner_on_the_files_own_documents(tmp_path):
    path = write(tmp_path / "train.jsonl", RECORDS)
    examples = load_examples(path, "pos_neg")
    mined, stats = remine_negatives(examples, group_size=3, tokenizer="english")
    mine_file(path, "pos_neg", str(tmp_path / "mined.jsonl"),
              MineOptions(negatives=2, margin=0.0, bm25_tokenizer="english", show_progress=False))
    by_cli = load_examples(str(tmp_path / "mined.jsonl"), "pos_neg")
    for ours, theirs, record in zip(mined, by_cli, RECORDS):
        assert ours["docs"] == theirs["docs"] and ours["docs"][0] == record["pos"][0]
        assert ours["labels"] == [1.0] + [0.0] * (len(ours["docs"]) - 1)
        assert ours["doc_hashes"] == [text_hash(d) for d in ours["docs"]]
    assert stats.queries == 5 and stats.negatives_before == 7 and stats.dropped_as_false_negative == 2
    assert stats.negatives_after == sum(len(r["docs"]) - 1 for r in mined)
    # no filter: never fewer negatives than with it
    assert remine_negatives(examples, group_size=3, margin=None, tokenizer="english")[1].negatives_after >= \
        stats.negatives_after


def test_a_record_without_a_positive_is_kept_as_it_is(tmp_path):
    records = RECORDS + [{"query": "a query with no answer", "docs": [CORPUS[1], CORPUS[2]], "labels": [0, 0]}]
    path = write(tmp_path / "hits.jsonl", [{"query": r["query"], "hits": [
        {"content": d, "label": v} for d, v in zip(r.get("docs", r.get("pos", []) + r.get("neg", [])),
                                                r.get("labels", [1] + [0] * len(r.get("neg", []))))]}
        for r in records])
    examples = load_examples(path, "hits")
    mined, stats = remine_negatives(examples, group_size=2)
    assert mined[5]["docs"] == examples[5]["docs"] and stats.queries == 5


def test_the_config_key_trains_logs_and_refuses_what_it_cannot_do(tmp_path, caplog):
    path = write(tmp_path / "train.jsonl", RECORDS * 2)
    with caplog.at_level("INFO"):
        main(tiny_args(tmp_path / "out", f"data.train_path={path}", "data.negatives=bm25",
                       "eval.before_training=false", config=CFG))
    assert "data.negatives=bm25: 10 queries' negatives mined again" in caplog.text
    with pytest.raises(ConfigError, match="data.negatives='dense' is not valid; choose one of: file, bm25"):
        main(tiny_args(tmp_path / "bad", "data.negatives=dense", config=CFG))
    with pytest.raises(ConfigError, match="teacher scores"):
        main(tiny_args(tmp_path / "scores", "data.negatives=bm25", "data.train_path=data/example/train_scores.jsonl",
                       config=CFG))
    assert not (tmp_path / "bad").exists() and not (tmp_path / "scores").exists()
