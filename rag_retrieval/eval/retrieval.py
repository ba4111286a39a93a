"""Full retrieval evaluation: every query searches the whole corpus (exact inner product; FAISS
when installed), graded relevance from qrels. Reads this project's corpus/queries files or a
BEIR folder (:mod:`rag_retrieval.data.beir`)."""

from __future__ import annotations

import logging
import time
from typing import Optional, Sequence

from ..data.beir import read_beir
from ..data.inputs import iter_records
from ..data.io import DataError
from .metrics import means, query_metrics

logger = logging.getLogger(__name__)


def read_corpus_and_queries(corpus_path: str, queries_path: str) -> tuple:
    """The same from this project's files: corpus ``{"id", "text"}``, queries ``{"qid", "query",
    "pos_ids": [...]}`` (every listed id relevant, grade 1)."""
    ids, texts = [], []
    for where, rec, errors in iter_records(corpus_path):
        if errors or not isinstance(rec, dict) or not isinstance(rec.get("text"), str) or "id" not in rec:
            raise DataError(f"{where}: expected {{\"id\", \"text\"}} ({'; '.join(errors)})")
        ids.append(str(rec["id"]))
        texts.append(rec["text"])
    queries, qrels = [], {}
    for where, rec, errors in iter_records(queries_path):
        if errors or not isinstance(rec, dict) or not isinstance(rec.get("query"), str) \
                or not isinstance(rec.get("pos_ids"), list):
            raise DataError(f"{where}: expected {{\"qid\", \"query\", \"pos_ids\"}}")
        qid = str(rec.get("qid", len(queries)))
        queries.append((qid, rec["query"]))
        qrels[qid] = {str(i): 1 for i in rec["pos_ids"]}
    return ids, texts, queries, qrels


class RetrievalEvaluator:
    """Full retrieval over a corpus with exact search; bi-encoders only.

    Args:
        corpus_path / queries_path: this project's corpus and queries files; or
        beir: a BEIR folder (then ``split`` names its qrels file).
        max_queries: first N queries only (the whole corpus is still searched).
        k_values: cut-offs; the search returns ``max(k_values)`` documents per query.

    Metrics are the standard definitions with graded relevance: NDCG@k with linear gains (as
    pytrec_eval), MRR@k and MAP and Recall@k over the documents graded > 0.
    """

    def __init__(self, corpus_path: Optional[str] = None, queries_path: Optional[str] = None,
                 max_queries: Optional[int] = None, k_values: Sequence[int] = (1, 10, 100), batch_size: int = 128,
                 name: str = "retrieval", beir: Optional[str] = None, split: str = "test"):
        if beir is not None:
            self.corpus_ids, self.corpus_texts, queries, self.qrels = read_beir(beir, split)
            self.path = f"{beir} ({split})"
        else:
            self.corpus_ids, self.corpus_texts, queries, self.qrels = read_corpus_and_queries(corpus_path, queries_path)
            self.path = corpus_path
        self.queries = queries[:max_queries] if max_queries is not None else queries
        self.k_values = [int(k) for k in k_values]
        self.batch_size = batch_size
        self.name = name

    def describe(self) -> str:
        return f"{len(self.queries)} queries over the {len(self.corpus_texts)} passages of {self.path}"

    def search(self, model, top: int) -> list:
        """The ``top`` corpus indices of every query, best first."""
        from ..data.mining_search import dense_search

        p = model.encode_passages(self.corpus_texts, batch_size=self.batch_size).float().cpu()  # (N, D)
        q = model.encode_queries([t for _, t in self.queries], batch_size=self.batch_size).float().cpu()  # (Q, D)
        return dense_search(q, p, top)[0].tolist()

    def metrics(self, hits: list) -> dict:
        """Mean metrics of ranked corpus indices per query (one list per query of ``self.queries``)."""
        return means(self.metrics_per_query(hits))

    def metrics_per_query(self, hits: list, k_values: Optional[Sequence[int]] = None, name: Optional[str] = None) -> dict:
        """{metric: [one value per query]} of ranked corpus indices per query."""
        k_values = sorted(set(k_values or self.k_values))
        per_query = []
        for row, (qid, _) in zip(hits, self.queries):
            grades = self.qrels.get(qid, {})
            ranked = [float(grades.get(self.corpus_ids[j], 0)) for j in self._own(row, qid)[: max(k_values)]]
            per_query.append(query_metrics(ranked, k_values, [float(g) for g in grades.values() if g > 0]))
        name = self.name if name is None else name
        prefix = f"{name}_" if name else ""
        return {prefix + k: [m[k] for m in per_query] for k in (per_query[0] if per_query else {})}

    def _own(self, row: Sequence[int], qid: str) -> list:
        # a document with the query's own id is the query itself (ArguAna, Quora): left out, as BEIR does
        return [j for j in row if j >= 0 and self.corpus_ids[j] != qid]

    def __call__(self, model) -> dict:
        return means(self.per_query(model)[0])

    def per_query(self, model) -> tuple:
        """``({metric: [one value per query]}, {metric: [the query texts]})``."""
        if not hasattr(model, "encode_queries"):
            raise TypeError("retrieval evaluation needs a bi-encoder (encode_queries / encode_passages)")
        values = self.metrics_per_query(self.search(model, min(max(self.k_values) + 1, len(self.corpus_texts))))
        texts = [t for _, t in self.queries]
        return values, {k: texts for k in values}

    def rerank_per_query(self, model, reranker, top_k: int) -> tuple:
        """Retrieve, then rerank: ``model`` (a bi-encoder) retrieves each query's ``top_k`` from the
        corpus, ``reranker`` (anything with ``compute_score``, or a bi-encoder) reorders them. Returns
        ``({metric: [values]}, {metric: [query texts]}, seconds)``: the first stage's metrics
        (``retrieval_*``, with Recall@top_k), the reranked list's (``retrieval_reranked_*``), and
        ``{"first_stage_per_query", "corpus_encoding", "rerank_per_query"}`` in seconds."""
        if not hasattr(model, "encode_queries"):
            raise TypeError("retrieve-then-rerank needs a bi-encoder as its first stage (encode_queries)")
        clock = time.perf_counter()
        p = model.encode_passages(self.corpus_texts, batch_size=self.batch_size).float().cpu()
        encoded = time.perf_counter()
        q = model.encode_queries([t for _, t in self.queries], batch_size=self.batch_size).float().cpu()
        from ..data.mining_search import dense_search

        hits = dense_search(q, p, min(top_k + 1, len(self.corpus_texts)))[0].tolist()
        searched = time.perf_counter()
        heads = [self._own(row, qid)[:top_k] for row, (qid, _) in zip(hits, self.queries)]
        pairs = [(text, self.corpus_texts[j]) for head, (_, text) in zip(heads, self.queries) for j in head]
        flat = list(pair_scores(reranker, pairs, self.batch_size))
        reranked, start = [], 0
        for head in heads:
            scores = flat[start : start + len(head)]
            start += len(head)
            reranked.append([head[i] for i in sorted(range(len(head)), key=lambda i: -scores[i])])
        n = max(len(self.queries), 1)
        seconds = {"corpus_encoding": round(encoded - clock, 3), "first_stage_per_query": (searched - encoded) / n,
                   "rerank_per_query": (time.perf_counter() - searched) / n}
        values = self.metrics_per_query(heads, [*self.k_values, top_k])
        values.update(self.metrics_per_query(reranked, name=f"{self.name}_reranked" if self.name else "reranked"))
        texts = [t for _, t in self.queries]
        return values, {k: texts for k in values}, seconds


def pair_scores(model, pairs: Sequence, batch_size: int) -> list:
    """Scores of (query, passage) pairs by a reranker (``compute_score``) or a bi-encoder (inner product
    of its embeddings, each distinct text encoded once)."""
    if hasattr(model, "compute_score"):
        return model.compute_score(pairs, batch_size=batch_size) if pairs else []
    if not pairs:
        return []
    queries, passages = (list(dict.fromkeys(side)) for side in zip(*pairs))
    q = model.encode_queries(queries, batch_size=batch_size).float()
    p = model.encode_passages(passages, batch_size=batch_size).float()
    q_at, p_at = {t: i for i, t in enumerate(queries)}, {t: i for i, t in enumerate(passages)}
    rows = [q_at[a] for a, _ in pairs]
    cols = [p_at[b] for _, b in pairs]
    return (q[rows] * p[cols]).sum(-1).tolist()
