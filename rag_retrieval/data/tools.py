"""Data tools behind ``rag-retrieval validate`` and ``rag-retrieval split`` (their command lines are
in :mod:`rag_retrieval.cli.data`). ``convert`` lives in :mod:`.convert` and is re-exported here."""

from __future__ import annotations

import os
import random
from typing import Optional

from ..utils.text import word_count
from .common import InputError, check_records, good_records, spread
from .convert import convert_file, read_pairs, to_pos_neg, to_records
from .inputs import iter_records
from .io import FORMATS, to_example, write_jsonl_atomic
from .labels import label_kind

__all__ = ["InputError", "convert_file", "read_pairs", "split_file", "to_pos_neg", "to_records", "validate_file"]


def _percentiles(values: list) -> dict:
    """p50/p90/p99/max of ``values`` (nearest rank).

    >>> _percentiles([1, 2, 3, 4, 100])
    {'p50': 3, 'p90': 100, 'p99': 100, 'max': 100}
    """
    if not values:
        return {}
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, max(0, -(-q * len(ordered) // 100) - 1))]  # noqa: E731
    return {"p50": pick(50), "p90": pick(90), "p99": pick(99), "max": ordered[-1]}


def validate_file(path: str, fmt: str, tokenizer=None, against: Optional[str] = None,
                  columns: Optional[dict] = None) -> dict:
    """Check every record of ``path`` (as the training readers do) and describe the data.

    Returns ``{"errors": ["file:line: key: problem", ...], "stats": {...}}``: records, queries,
    the kind of labels (:func:`~.labels.label_kind`), positives and negatives per query (rank
    labels: a record's top-labelled documents are its positives), duplicate queries, duplicate
    documents within a query, negatives equal to a positive of the same query, length
    percentiles (in tokens of ``tokenizer``, else in words, a CJK character counting as one), and
    the queries also found in ``against``.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format '{fmt}'; choose one of: {', '.join(FORMATS)}")
    records, errors, n_bad = check_records(path, fmt, columns)
    examples = [to_example(record, fmt) for record in records]
    kind = label_kind(v for ex in examples for v in ex.labels) if examples else "binary"
    per_query: dict = {}  # query -> {"pos": [...], "neg": [...], "records": n}
    dup_docs = 0
    for ex in examples:
        entry = per_query.setdefault(ex.query, {"pos": [], "neg": [], "records": 0})
        entry["records"] += 1
        dup_docs += len(ex.docs) - len(set(ex.docs))
        top = max(ex.labels)
        for doc, label in zip(ex.docs, ex.labels):
            positive = label == top if kind == "rank" else label > 0
            entry["pos" if positive else "neg"].append(doc)
    false_negatives = sum(len(set(e["neg"]) & set(e["pos"])) for e in per_query.values())
    count = (lambda t: len(tokenizer(t, add_special_tokens=False, verbose=False)["input_ids"])) if tokenizer is not None \
        else word_count
    queries = list(per_query)
    docs = list({d for e in per_query.values() for d in e["pos"] + e["neg"]})
    stats = {
        "records": len(records) + n_bad, "good_records": len(records), "bad_records": n_bad,
        "queries": len(queries),
        "label_kind": kind,
        "labels": sorted({v for ex in examples for v in ex.labels})[:12],
        "duplicate_query_records": sum(e["records"] - 1 for e in per_query.values()),
        "positives_per_query": spread([len(e["pos"]) for e in per_query.values()]),
        "negatives_per_query": spread([len(e["neg"]) for e in per_query.values()]),
        "queries_without_negatives": sum(1 for e in per_query.values() if not e["neg"]),
        "duplicate_docs_within_records": dup_docs,
        "negatives_equal_to_a_positive": false_negatives,
        "length_unit": "tokens" if tokenizer is not None else "words",
        "query_length": _percentiles([count(q) for q in queries]),
        "document_length": _percentiles([count(d) for d in docs]),
    }
    if against:
        other = {rec["query"] for _, rec, problems in iter_records(against)
                 if not problems and isinstance(rec, dict) and isinstance(rec.get("query"), str)}
        shared = [q for q in queries if q in other]
        stats["overlap_with"] = {"file": against, "its_queries": len(other), "shared_queries": len(shared),
                                 "examples": shared[:5]}
    return {"errors": errors, "stats": stats}


def split_file(path: str, fmt: str, eval_fraction: float, train_out: str, eval_out: str, seed: int = 0,
               overwrite: bool = False) -> dict:
    """Split ``path`` into train and eval files by query: every record of a query goes to the same
    side, so no eval query is seen in training. Records are validated first; nothing is written
    when one is bad. Returns the counts."""
    if not 0 < eval_fraction < 1:
        raise ValueError(f"--eval-fraction must be in (0, 1), got {eval_fraction}")
    records = good_records(path, fmt)
    queries = sorted({r["query"] for r in records})
    random.Random(seed).shuffle(queries)
    n_eval = max(1, round(len(queries) * eval_fraction))
    if n_eval >= len(queries):
        raise ValueError(f"{len(queries)} queries are too few to split with --eval-fraction {eval_fraction}")
    held = set(queries[:n_eval])
    for out in (train_out, eval_out):  # check both before writing either
        if os.path.exists(out) and not overwrite:
            raise FileExistsError(f"{out} exists; pass --overwrite to replace it")
    train = [r for r in records if r["query"] not in held]
    dev = [r for r in records if r["query"] in held]
    write_jsonl_atomic(train, train_out, overwrite=overwrite)
    write_jsonl_atomic(dev, eval_out, overwrite=overwrite)
    return {"train_records": len(train), "eval_records": len(dev), "train_queries": len(queries) - n_eval,
            "eval_queries": n_eval}
