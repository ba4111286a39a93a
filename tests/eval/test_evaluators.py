import json

import pytest

from rag_retrieval.data import DataError
from rag_retrieval.eval import RerankEvaluator, RetrievalEvaluator
from rag_retrieval.eval.__main__ import main as eval_main


class ScoreByOverlap:
    """A fake reranker: score = shared words (so the expected ranking is known)."""

    def compute_score(self, pairs, batch_size=None):
        return [len(set(q.split()) & set(d.split())) for q, d in pairs]


def test_rerank_evaluator_with_a_known_ranking(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps({"query": "red apple", "pos": ["green pear"], "neg": ["red apple", "red car"]}) + "\n"
                    + json.dumps({"query": "blue sky", "pos": ["blue sky"], "neg": ["sky"]}) + "\n")
    metrics = RerankEvaluator(str(path), k_values=[1, 10], name="")(ScoreByOverlap())
    assert metrics["mrr@10"] == pytest.approx((1 / 3 + 1) / 2)
    assert metrics["recall@1"] == pytest.approx(0.5)


def test_bad_eval_file_names_file_and_line(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps({"query": "q", "pos": ["p"]}) + "\n{bad\n")
    with pytest.raises(DataError, match=r"t.jsonl:2: line: bad JSON"):
        RerankEvaluator(str(path))


def test_retrieval_evaluator_and_cli(tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(
        ["Firefox web browser", "C compiler from GNU", "image resizing tool", "text editor for programmers"])))
    queries = tmp_path / "q.jsonl"
    queries.write_text(json.dumps({"qid": "1", "query": "browse the web", "pos_ids": ["d0"]}) + "\n"
                       + json.dumps({"qid": "2", "query": "compile C code", "pos_ids": ["d1"]}) + "\n")
    from rag_retrieval.models import BiEncoder

    metrics = RetrievalEvaluator(str(corpus), str(queries), k_values=[1, 3])(BiEncoder.from_pretrained("minilm"))
    assert metrics["retrieval_recall@1"] == 1.0
    out = tmp_path / "m.json"
    results = eval_main(["--model", "minilm", "--rerank", "data/example/test.jsonl", "--corpus", str(corpus),
                         "--queries", str(queries), "--k", "1", "10", "--output", str(out)])
    assert results["minilm"]["retrieval_mrr@10"] == 1.0 and json.loads(out.read_text())["minilm"]["rerank_map"] > 0


class WordVectors:
    """A fake bi-encoder: one dimension per vocabulary word, counts (so the first-stage ranking is known)."""

    vocab = ["web", "browser", "c", "compiler", "image", "editor"]

    def _encode(self, texts, batch_size=None, prompts=None):
        import torch

        return torch.tensor([[float(t.lower().split().count(w)) for w in self.vocab] for t in texts])

    encode_queries = encode_passages = _encode


class ShorterFirst:
    def compute_score(self, pairs, batch_size=None):
        return [-len(d) for _, d in pairs]


def test_retrieve_then_rerank_equals_a_hand_computation(tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    docs = ["web browser web", "web browser", "c compiler", "image editor", "web editor"]
    corpus.write_text("".join(json.dumps({"id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(docs)))
    queries = tmp_path / "q.jsonl"
    queries.write_text(json.dumps({"qid": "1", "query": "web browser", "pos_ids": ["d1"]}) + "\n"
                       + json.dumps({"qid": "2", "query": "image editor", "pos_ids": ["d4"]}) + "\n")
    ev = RetrievalEvaluator(str(corpus), str(queries), k_values=[1, 2])
    values, texts, seconds = ev.rerank_per_query(WordVectors(), ShorterFirst(), top_k=2)
    # first stage, dot products of word counts: q1 -> d0 (3), d1 (2); q2 -> d3 (2), d4 (1): each positive second
    assert values["retrieval_mrr@2"] == [0.5, 0.5] and values["retrieval_recall@2"] == [1.0, 1.0]
    assert values["retrieval_mrr@1"] == [0.0, 0.0]
    # the reranker puts the shorter passage first: q1 -> d1 (11 characters) before d0 (15); q2 -> d4 (10) before d3
    assert values["retrieval_reranked_mrr@1"] == [1.0, 1.0] and values["retrieval_reranked_recall@2"] == [1.0, 1.0]
    assert texts["retrieval_reranked_mrr@2"] == ["web browser", "image editor"]
    assert set(seconds) == {"corpus_encoding", "first_stage_per_query", "rerank_per_query"}


def test_retrieve_then_rerank_from_the_command_line(tmp_path, capsys):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(
        ["Firefox web browser", "C compiler from GNU", "image resizing tool", "text editor for programmers"])))
    queries = tmp_path / "q.jsonl"
    queries.write_text(json.dumps({"qid": "1", "query": "browse the web", "pos_ids": ["d0"]}) + "\n")
    results = eval_main(["--model", "minilm", "--rerank-with", "minilm", "--corpus", str(corpus), "--queries",
                         str(queries), "--k", "1", "10", "--top-k", "3"])
    metrics = results["minilm"]
    assert metrics["retrieval_recall@3"] == 1.0 and metrics["retrieval_reranked_mrr@10"] == metrics["retrieval_mrr@10"]
    assert "rerank of the top 3" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        eval_main(["--model", "minilm", "--rerank-with", "minilm", "--rerank", "data/example/test.jsonl"])
