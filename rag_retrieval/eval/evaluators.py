"""Rerank and retrieval evaluators: a model in, a dict of mean metrics out.

They work with any model that offers ``encode_queries`` / ``encode_passages`` (bi-encoders) or
``compute_score(pairs)`` (cross-encoders and other rerankers). Each unique text is encoded once.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Optional, Sequence

import torch

from ..data.inputs import iter_records
from ..data.io import DataError, to_example, validate_record
from ..data.labels import label_kind, scale
from ..utils.dist import root_unsharded
from .metrics import means, query_metrics, rank_by_scores
from .retrieval import RetrievalEvaluator

logger = logging.getLogger(__name__)


def labelled_records(path: str, fmt: str, columns: Optional[dict] = None,
                     label_range: Optional[Sequence[float]] = None) -> list:
    """``[(where, record, example)]`` of every record of ``path`` (keys renamed by ``columns``, labels
    scaled by ``label_range``).

    Raises:
        DataError: every bad record, as file:line (up to 20 listed).
    """
    out, problems = [], []
    for where, record, errors in iter_records(path, columns):
        errors = errors or validate_record(record, fmt)
        if errors:
            problems.extend(f"{where}: {e}" for e in errors)
            continue
        ex = to_example(record, fmt)
        ex.labels = [scale(v, label_range) for v in ex.labels]
        out.append((where, record, ex))
    if problems:
        raise DataError(f"{len(problems)} bad record(s) in {path}:\n  " + "\n  ".join(problems[:20]))
    return out


def read_examples(path: str, fmt: str, max_queries: Optional[int], columns: Optional[dict] = None,
                   label_range: Optional[Sequence[float]] = None) -> list:
    """The evaluation queries of ``path``, labels scaled by ``label_range``; pointwise records of
    one query are one list (all of them, also past ``max_queries`` queries).

    Raises:
        DataError: bad records (file:line), or no document labelled > 0 (relevant) anywhere.
    """
    out, seen = [], {}
    for _, _, ex in labelled_records(path, fmt, columns, label_range):
        if fmt == "pointwise" and ex.query in seen:  # one document per record: a query's records are one list
            group = seen[ex.query]
            group.docs, group.labels = group.docs + ex.docs, group.labels + ex.labels
            continue
        if max_queries is not None and len(out) >= max_queries:
            if fmt == "pointwise":
                continue  # later records may still belong to the queries kept
            break
        seen[ex.query] = ex
        out.append(ex)
    if out and not any(v > 0 for ex in out for v in ex.labels):
        kind = label_kind(v for ex in out for v in ex.labels)
        raise DataError(f"{path}: no document is labelled > 0 (relevant), the labels are {kind}; evaluation counts a "
                        f"document relevant when its label is above 0: map them with eval.label_range / --label-range "
                        f"[min, max] (rank labels -1 best ... -20: [-20, -1])")
    return out


def _unique(texts: Sequence[str]) -> tuple:
    """(unique texts in first-seen order, index of each input text among them)."""
    index: dict = {}
    positions = [index.setdefault(t, len(index)) for t in texts]
    return list(index), positions


class RerankEvaluator:
    """Rank each query's positives among its candidates (pos + neg), as MTEB reranking tasks.

    Args:
        path: JSONL in ``pos_neg`` (or ``hits``, graded) format.
        max_queries: evaluate the first N queries only.
        k_values: cut-offs for MRR@k, NDCG@k and Recall@k.
        batch_size: encoding / scoring batch size.
        fmt: the file's format.
        name: prefix of the metric names (``rerank`` -> ``rerank_mrr@10``); empty for none.

    Example:
        >>> from rag_retrieval.models import BiEncoder
        >>> ev = RerankEvaluator("data/example/test.jsonl", max_queries=5)
        >>> metrics = ev(BiEncoder.from_pretrained("minilm"))
        >>> 0 <= metrics["rerank_mrr@10"] <= 1
        True
    """

    def __init__(self, path: str, max_queries: Optional[int] = None, k_values: Sequence[int] = (1, 5, 10),
                 batch_size: int = 128, fmt: str = "pos_neg", name: str = "rerank", columns: Optional[dict] = None,
                 label_range: Optional[Sequence[float]] = None):
        self.path = path
        self.examples = read_examples(path, fmt, max_queries, columns, label_range)
        self.k_values = [int(k) for k in k_values]
        self.batch_size = batch_size
        self.name = name

    def describe(self) -> str:
        return f"{len(self.examples)} queries of {self.path}"

    def scores(self, model) -> list:
        """One list of scores per query, aligned with its ``docs``."""
        examples = self.examples
        if hasattr(model, "encode_queries"):
            queries = [(ex.prompt, ex.query) for ex in examples]
            uq, q_pos = _unique(queries)
            ud, d_pos = _unique([d for ex in examples for d in ex.docs])
            q = model.encode_queries([t for _, t in uq], prompts=[p for p, _ in uq], batch_size=self.batch_size)
            p = model.encode_passages(ud, batch_size=self.batch_size)
            out, start = [], 0
            for i, ex in enumerate(examples):
                idx = torch.tensor(d_pos[start : start + len(ex.docs)])
                out.append((p[idx] @ q[q_pos[i]]).tolist())  # (n_docs,)
                start += len(ex.docs)
            return out
        if hasattr(model, "compute_score"):
            pairs = [(ex.query, d) for ex in examples for d in ex.docs]
            flat = list(model.compute_score(pairs, batch_size=self.batch_size))
            out, start = [], 0
            for ex in examples:
                out.append(flat[start : start + len(ex.docs)])
                start += len(ex.docs)
            return out
        raise TypeError(f"{type(model).__name__} has neither encode_queries nor compute_score")

    def __call__(self, model) -> dict:
        """Mean metrics over the queries. A layerwise model (one score per cutoff layer) is measured
        at each layer (``rerank_layer8_mrr@10``, ...); the unprefixed names are its last layer's."""
        return means(self.per_query(model)[0])

    def per_query(self, model) -> tuple:
        """``({metric: [one value per query]}, {metric: [the query texts]})``: what :meth:`__call__`
        averages, for paired comparisons (:mod:`.significance`)."""
        t0 = time.time()
        all_scores = self.scores(model)
        prefix = f"{self.name}_" if self.name else ""
        layered = bool(all_scores) and bool(all_scores[0]) and isinstance(all_scores[0][0], list)
        columns = len(all_scores[0][0]) if layered else 1
        layers = list(getattr(model, "cutoff_layers", None) or range(1, columns + 1))
        out = {}
        for c in range(columns):
            per_query = []
            for ex, scores in zip(self.examples, all_scores):
                scores = [s[c] for s in scores] if layered else scores
                ranked = [ex.labels[i] for i in rank_by_scores(scores)]
                per_query.append(query_metrics(ranked, self.k_values, ex.labels))
            columns_of = {k: [m[k] for m in per_query] for k in (per_query[0] if per_query else {})}
            if layered:
                out.update({f"{prefix}layer{layers[c]}_{k}": v for k, v in columns_of.items()})
            if c == columns - 1:
                out.update({prefix + k: v for k, v in columns_of.items()})
        logger.info("%s: %d queries in %.1fs", self.name or "rerank", len(self.examples), time.time() - t0)
        texts = [ex.query for ex in self.examples]
        return out, {k: texts for k in out}


class EvaluatorGroup:
    """Run several evaluators and merge their metrics.

    ``max_length``: evaluate with this truncation length (a reranker's ``max_length``, a bi-encoder's
    ``passage_max_len``) instead of the model's own, which is restored afterwards; e.g. a reranker
    trained on 64-token windows, evaluated on 128 tokens of each document. ``bf16``: score under
    bf16 autocast on the model's device (LLM rerankers on CPU: ~3x faster than fp32).
    """

    def __init__(self, evaluators: Sequence, max_length: Optional[int] = None, bf16: bool = False):
        self.evaluators = list(evaluators)
        self.max_length = max_length
        self.bf16 = bf16

    def describe(self) -> str:
        """What an evaluation reads, for the line said before it starts."""
        return "; ".join(ev.describe() for ev in self.evaluators if hasattr(ev, "describe"))

    def __call__(self, model) -> dict:
        return self.evaluate(model)[0]

    def evaluate(self, model) -> tuple:
        """``(mean metrics, {metric: [per-query values]}, {metric: [query texts]})`` in one pass."""
        values, texts, plain = self._run(model)
        return {**means(values), **plain}, values, texts

    def per_query(self, model) -> tuple:
        """Every evaluator's :meth:`RerankEvaluator.per_query`, merged (a plain callable evaluator's
        metrics have no per-query values and are left out)."""
        return self._run(model)[:2]

    def _run(self, model) -> tuple:
        key = next((k for k in ("max_length", "passage_max_len") if hasattr(model, k)), None)
        saved = getattr(model, key) if key else None
        if key and self.max_length:
            setattr(model, key, self.max_length)
        device = next(model.parameters()).device.type if hasattr(model, "parameters") else "cpu"
        try:
            values: dict = {}
            texts: dict = {}
            plain: dict = {}  # metrics of evaluators that are plain callables (model -> {metric: value})
            # FSDP2: the root's own weights are gathered once for all evaluators (they call submodules directly)
            with torch.autocast(device, dtype=torch.bfloat16, enabled=self.bf16), root_unsharded(model):
                for ev in self.evaluators:
                    if hasattr(ev, "per_query"):
                        v, t = ev.per_query(model)
                        values.update(v)
                        texts.update(t)
                    else:
                        plain.update(ev(model))
            return values, texts, plain
        finally:
            if key:
                setattr(model, key, saved)


def build_evaluator(eval_args) -> Optional[EvaluatorGroup]:
    """Evaluators for the ``eval:`` config section, or None when it names no file."""
    evaluators = []
    if eval_args.rerank_path:
        evaluators.append(RerankEvaluator(eval_args.rerank_path, eval_args.max_queries, eval_args.k_values,
                                          eval_args.batch_size, eval_args.format, columns=eval_args.columns,
                                          label_range=eval_args.label_range))
    if eval_args.corpus_path:
        evaluators.append(RetrievalEvaluator(eval_args.corpus_path, eval_args.queries_path, eval_args.max_queries,
                                             eval_args.k_values, eval_args.batch_size))
    if eval_args.beir_path:
        evaluators.append(RetrievalEvaluator(max_queries=eval_args.max_queries, k_values=eval_args.k_values,
                                             batch_size=eval_args.batch_size, name="beir", beir=eval_args.beir_path,
                                             split=eval_args.beir_split))
    return EvaluatorGroup(evaluators, eval_args.max_length, eval_args.bf16) if evaluators else None


def format_table(rows: dict, keys: Optional[Sequence[str]] = None) -> str:
    """Markdown table: one row per name in ``rows`` ({name: {metric: value}}), one column per metric.

    >>> print(format_table({"before": {"mrr@10": 0.5}, "after": {"mrr@10": 0.75}}))
    | model | mrr@10 |
    |---|---|
    | before | 0.5000 |
    | after | 0.7500 |
    """
    keys = list(keys or next(iter(rows.values())).keys())
    lines = ["| model | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for name, metrics in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{metrics.get(k, float('nan')):.4f}" for k in keys) + " |")
    return "\n".join(lines)


def dump_metrics(path: str, metrics: dict) -> None:
    with open(path, "w") as f:
        json.dump(metrics, f, indent=1)
