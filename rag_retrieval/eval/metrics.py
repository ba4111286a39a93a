"""Ranking metrics as pure functions over relevance labels in ranked order.

``ranked`` is the relevance of each returned document, best-scored first (0 = not relevant;
graded labels give graded gains in NDCG). ``n_relevant`` counts every relevant document of the
query, also those not returned (retrieval); it defaults to the relevant ones in ``ranked``.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence


def _n_rel(ranked: Sequence[float], n_relevant: Optional[int]) -> int:
    return n_relevant if n_relevant is not None else sum(1 for r in ranked if r > 0)


def mrr_at_k(ranked: Sequence[float], k: int) -> float:
    """Reciprocal rank of the first relevant document within the top ``k`` (0 if none).

    >>> mrr_at_k([0, 0, 1, 1], 10)
    0.3333333333333333
    >>> mrr_at_k([0, 0, 1], 2)
    0.0
    """
    for i, rel in enumerate(ranked[:k]):
        if rel > 0:
            return 1.0 / (i + 1)
    return 0.0


def ndcg_at_k(ranked: Sequence[float], k: int, all_labels: Optional[Sequence[float]] = None) -> float:
    """NDCG@k with linear gains ``rel / log2(rank + 1)`` (as pytrec_eval and MTEB).

    ``all_labels`` are the labels of every relevant document (for the ideal ranking); by default
    those of ``ranked``.

    >>> ndcg_at_k([1, 0], 10)
    1.0
    >>> round(ndcg_at_k([0, 1], 10), 4)  # 1/log2(3)
    0.6309
    >>> round(ndcg_at_k([0, 1], 10, all_labels=[1, 1]), 4)  # a second relevant doc was not returned
    0.3869
    """
    dcg = sum(rel / math.log2(i + 2) for i, rel in enumerate(ranked[:k]) if rel > 0)
    ideal = sorted((r for r in (all_labels if all_labels is not None else ranked) if r > 0), reverse=True)[:k]
    idcg = sum(rel / math.log2(i + 2) for i, rel in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at_k(ranked: Sequence[float], k: int, n_relevant: Optional[int] = None) -> float:
    """Share of the relevant documents found in the top ``k``.

    >>> recall_at_k([1, 0, 1, 0], 2, n_relevant=4)
    0.25
    """
    n = _n_rel(ranked, n_relevant)
    return sum(1 for r in ranked[:k] if r > 0) / n if n > 0 else 0.0


def average_precision(ranked: Sequence[float], n_relevant: Optional[int] = None) -> float:
    """Average of precision@i over the ranks i of the relevant documents (MAP per query).

    >>> average_precision([1, 0, 1])  # (1/1 + 2/3) / 2
    0.8333333333333333
    >>> average_precision([0, 1], n_relevant=2)
    0.25
    """
    n = _n_rel(ranked, n_relevant)
    hits, total = 0, 0.0
    for i, rel in enumerate(ranked):
        if rel > 0:
            hits += 1
            total += hits / (i + 1)
    return total / n if n > 0 else 0.0


def rank_by_scores(scores: Sequence[float]) -> list:
    """Indices sorted by descending score; ties keep input order (stable).

    >>> rank_by_scores([0.1, 0.9, 0.1])
    [1, 0, 2]
    """
    return sorted(range(len(scores)), key=lambda i: -scores[i])


def query_metrics(ranked: Sequence[float], k_values: Sequence[int], all_labels: Optional[Sequence[float]] = None) -> dict:
    """MAP, MRR@k, NDCG@k and Recall@k of one query.

    >>> query_metrics([0, 1, 0], [1, 10])["mrr@10"]
    0.5
    """
    rel = [r for r in (all_labels if all_labels is not None else ranked) if r > 0]
    out = {"map": average_precision(ranked, len(rel))}
    out.update({f"mrr@{k}": mrr_at_k(ranked, k) for k in k_values})
    out.update({f"ndcg@{k}": ndcg_at_k(ranked, k, rel) for k in k_values})
    out.update({f"recall@{k}": recall_at_k(ranked, k, len(rel)) for k in k_values})
    return out


def mean_metrics(per_query: Sequence[dict]) -> dict:
    """Average each metric over queries.

    >>> mean_metrics([{"map": 1.0}, {"map": 0.5}])
    {'map': 0.75}
    """
    if not per_query:
        return {}
    return {key: sum(m[key] for m in per_query) / len(per_query) for key in per_query[0]}


def means(per_query: dict) -> dict:
    """Per-metric columns ({metric: [one value per query]}) -> {metric: mean}.

    >>> means({"mrr@10": [1.0, 0.5]})
    {'mrr@10': 0.75}
    """
    return {k: sum(v) / len(v) for k, v in per_query.items() if v}
