import json

import pytest
import torch

from rag_retrieval import Embedder, Reranker
from rag_retrieval.infer import BaseRanker, CrossEncoderRanker, token_windows
from rag_retrieval.models import CrossEncoder

PAIRS = [("what is a web browser", "Firefox is a free web browser."),
         ("what is a web browser", "GCC is the GNU compiler collection for C and C++."),
         ("resize photos", "A command-line tool to resize, crop and convert images.")]


@pytest.fixture(scope="module")
def saved_minilm_reranker(tmp_path_factory):
    path = tmp_path_factory.mktemp("ce")
    torch.manual_seed(0)
    CrossEncoder.from_pretrained("minilm").save_pretrained(str(path))
    return str(path)


def test_type_is_detected_and_scores_equal_training_code(saved_minilm_reranker):
    ranker = Reranker(saved_minilm_reranker)
    assert isinstance(ranker, CrossEncoderRanker)
    expected = CrossEncoder.from_pretrained(saved_minilm_reranker).compute_score(PAIRS)
    assert ranker.compute_score(PAIRS) == pytest.approx(expected, abs=1e-6)
    assert ranker.compute_score(PAIRS, normalize=True) == pytest.approx(torch.sigmoid(torch.tensor(expected)).tolist(),
                                                                        abs=1e-6)


def test_unknown_type_lists_the_valid_ones(tmp_path):
    with pytest.raises(ValueError, match="model_type='bm25' is not valid; choose one of: colbert, cross-encoder"):
        Reranker("tiny-bert", model_type="bm25")
    with pytest.raises(ValueError, match="cannot tell the model type"):
        Reranker(str(tmp_path))


def test_rerank_edge_cases():
    ranker = Reranker("tiny-bert", model_type="cross-encoder", batch_size=256)
    assert list(ranker.rerank("q", [])) == []
    one = ranker.rerank("q", ["only doc"])
    assert one.ids == [0] and one[0].rank == 0
    docs = ["Firefox is a web browser.", "A C compiler.", "Firefox is a web browser.", "An image tool."]
    res = ranker.rerank("web browser", docs)
    assert sorted(res.ids) == [0, 1, 2, 3] and res.scores == sorted(res.scores, reverse=True)
    assert res.scores[res.ids.index(0)] == res.scores[res.ids.index(2)]  # duplicates score the same
    assert ranker.rerank("web browser", docs, top_k=2).ids == res.ids[:2]
    many = ranker.rerank("web browser", [f"document number {i}" for i in range(10000)], top_k=3)
    assert len(many) == 3
    with pytest.raises(ValueError, match="truncate, max_chunk"):
        ranker.rerank("q", ["d"], long_doc="middle")


def test_long_documents_score_their_best_window(saved_minilm_reranker):
    ranker = Reranker(saved_minilm_reranker, max_length=32)
    filler = "lorem ipsum dolor sit amet " * 40
    long_doc = filler + "Firefox is a free and open source web browser. " + filler
    budget = 32 - len(ranker.tokenizer("web browser", add_special_tokens=False)["input_ids"]) - 3  # [CLS] [SEP] [SEP]
    windows = token_windows(ranker.tokenizer, long_doc, budget, 8)
    assert len(windows) > 5 and any("Firefox" in w for w in windows) and all(w in long_doc for w in windows)
    chunked = ranker.rerank("web browser", [long_doc], long_doc="max_chunk", chunk_overlap=8)[0].score
    assert chunked == pytest.approx(max(ranker.compute_score([("web browser", w) for w in windows])), abs=1e-6)
    with pytest.raises(ValueError, match="too few for windows"):
        ranker.rerank("web browser", [long_doc], long_doc="max_chunk", chunk_overlap=64)


def test_custom_ranker_subclass():
    class Overlap(BaseRanker):
        def compute_score(self, pairs, normalize=False):
            return [float(len(set(q.split()) & set(d.split()))) for q, d in pairs]

    assert Overlap().rerank("red apple", ["green pear", "red apple", "red car"]).texts[0] == "red apple"


def test_embedder_matches_training_code():
    from rag_retrieval.models import BiEncoder

    emb = Embedder("minilm")
    texts = ["web browser", "compiler"]
    assert torch.allclose(emb.encode_passages(texts), BiEncoder.from_pretrained("minilm").encode_passages(texts))
    assert emb.similarity(["browser"], texts, dim=64).shape == (1, 2)


def test_rerank_cli_writes_rankings_and_refuses_to_overwrite(tmp_path):
    from rag_retrieval.cli import main as cli
    from tests.helpers import cli_rc

    out = tmp_path / "ranked.jsonl"
    with pytest.raises(SystemExit) as done:
        cli(["rerank", "--model", "tiny-bert", "--model-type", "cross-encoder", "--input", "data/example/test.jsonl",
             "--output", str(out), "--top-k", "3"])
    assert done.value.code == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 10 and len(rows[0]["ranked"]) == 3 and rows[0]["ranked"][0]["rank"] == 0
    assert cli_rc(["rerank", "--model", "tiny-bert", "--input", "data/example/test.jsonl", "--output", str(out)]) \
        == f"error: {out} exists; pass --overwrite to replace it"


def test_eval_cli_evaluates_a_cross_encoder(saved_minilm_reranker):
    from rag_retrieval.eval.__main__ import main as eval_main

    results = eval_main(["--model", saved_minilm_reranker, "--rerank", "data/example/test.jsonl", "--k", "10"])
    assert 0 <= results[saved_minilm_reranker]["rerank_mrr@10"] <= 1


def test_several_devices_score_like_one(saved_minilm_reranker):
    from rag_retrieval.infer.rankers import _shards

    one = Reranker(saved_minilm_reranker, device="cpu", batch_size=4)
    two = Reranker(saved_minilm_reranker, device="cpu,cpu", batch_size=4)  # a replica per device, threads
    assert len(two.replicas) == 2 and two.replicas[0][0] is not two.replicas[1][0]
    pairs = [(f"query {i % 3}", f"document {i} about packages " * (1 + i % 5)) for i in range(23)]
    assert two.compute_score(pairs) == pytest.approx(one.compute_score(pairs), abs=1e-6)
    docs = [d for _, d in pairs]
    assert two.rerank("web browser", docs).ids == one.rerank("web browser", docs).ids
    with pytest.raises(ValueError, match="several of one type"):
        Reranker(saved_minilm_reranker, device=["cpu", "meta"])
    runs = [("a", 1), ("a", 2), ("a", 3), ("b", 4), ("c", 5), ("c", 6)]
    assert _shards(runs, 2, keep_query_runs=False) == [runs[:3], runs[3:]]
    assert _shards(runs, 3, keep_query_runs=True) == [runs[:3], runs[3:]]  # a query's run stays whole
    assert _shards(runs[:3], 2, keep_query_runs=True) == [runs[:3]]


def test_token_budget_batches_give_the_same_scores(saved_minilm_reranker):
    pairs = [(f"query {i % 3}", "a long document about packages " * (1 + i % 9)) for i in range(30)]
    capped = Reranker(saved_minilm_reranker, device="cpu", batch_size=8)
    assert capped.score_kwargs == {"max_tokens": 4096}  # the CPU default
    tiny_budget = Reranker(saved_minilm_reranker, device="cpu", batch_size=8, max_tokens=64)
    uncapped = Reranker(saved_minilm_reranker, device="cpu", batch_size=8, max_tokens=None)
    expected = uncapped.compute_score(pairs)
    assert tiny_budget.compute_score(pairs) == pytest.approx(expected, abs=1e-6)  # one pair per batch at most
    assert capped.compute_score(pairs) == pytest.approx(expected, abs=1e-6)
