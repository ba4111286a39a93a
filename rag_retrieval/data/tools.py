"""Data tools behind ``rag-retrieval validate`` and ``rag-retrieval split``. ``convert`` lives in
:mod:`.convert` and is re-exported here, where the CLI and scripts name it.

    rag-retrieval validate data.jsonl --format pos_neg --tokenizer minilm --against test.jsonl
    rag-retrieval split data.jsonl --format pos_neg --eval-fraction 0.1 --train-out train.jsonl --eval-out dev.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from typing import Optional, Sequence

from .common import InputError, check_records, good_records, print_stats, spread
from .convert import convert_file, convert_main, read_pairs, to_pos_neg, to_records
from .io import FORMATS, iter_jsonl, to_example, write_jsonl_atomic

__all__ = ["InputError", "convert_file", "convert_main", "read_pairs", "split_file", "split_main", "to_pos_neg",
           "to_records", "validate_file", "validate_main"]


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


def validate_file(path: str, fmt: str, tokenizer=None, against: Optional[str] = None) -> dict:
    """Check every record of ``path`` (as the training readers do) and describe the data.

    Returns ``{"errors": ["file:line: key: problem", ...], "stats": {...}}``: records, queries,
    positives and negatives per query, duplicate queries, duplicate documents within a query,
    negatives equal to a positive of the same query, length percentiles (in tokens of
    ``tokenizer``, else in whitespace words), and the queries also found in ``against``.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format '{fmt}'; choose one of: {', '.join(FORMATS)}")
    records, errors, n_bad = check_records(path, fmt)
    per_query: dict = {}  # query -> {"pos": [...], "neg": [...], "records": n}
    dup_docs = 0
    for record in records:
        ex = to_example(record, fmt)
        entry = per_query.setdefault(ex.query, {"pos": [], "neg": [], "records": 0})
        entry["records"] += 1
        dup_docs += len(ex.docs) - len(set(ex.docs))
        for doc, label in zip(ex.docs, ex.labels):
            entry["pos" if label > 0 else "neg"].append(doc)
    false_negatives = sum(len(set(e["neg"]) & set(e["pos"])) for e in per_query.values())
    count = (lambda t: len(tokenizer(t, add_special_tokens=False, verbose=False)["input_ids"])) if tokenizer is not None \
        else (lambda t: len(t.split()))
    queries = list(per_query)
    docs = list({d for e in per_query.values() for d in e["pos"] + e["neg"]})
    stats = {
        "records": len(records) + n_bad, "good_records": len(records), "bad_records": n_bad,
        "queries": len(queries),
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
        other = {rec["query"] for _, rec, problems in iter_jsonl(against)
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



def validate_main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="rag-retrieval validate", description=validate_file.__doc__)
    parser.add_argument("path")
    parser.add_argument("--format", required=True, choices=FORMATS)
    parser.add_argument("--tokenizer", help="count lengths in tokens of this tokenizer (hub id, folder or alias)")
    parser.add_argument("--against", help="a JSONL (e.g. the eval set) whose queries should not appear here")
    parser.add_argument("--json", help="also write the report as JSON here")
    args = parser.parse_args(argv)
    tokenizer = None
    if args.tokenizer:
        from transformers import AutoTokenizer

        from ..models.hub import resolve_model_path

        tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(args.tokenizer))
    report = validate_file(args.path, args.format, tokenizer, args.against)
    for error in report["errors"]:
        print(error, file=sys.stderr)
    print(f"{args.path} ({args.format}): {'OK' if not report['errors'] else str(len(report['errors'])) + ' problem(s)'}")
    print_stats(report["stats"])
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1, ensure_ascii=False)
    return 1 if report["errors"] else 0


def split_main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="rag-retrieval split", description=split_file.__doc__)
    parser.add_argument("path")
    parser.add_argument("--format", required=True, choices=FORMATS)
    parser.add_argument("--eval-fraction", type=float, default=0.1)
    parser.add_argument("--train-out", required=True)
    parser.add_argument("--eval-out", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    try:
        counts = split_file(args.path, args.format, args.eval_fraction, args.train_out, args.eval_out, args.seed,
                            args.overwrite)
    except (ValueError, FileExistsError, FileNotFoundError) as err:
        sys.exit(f"error: {err}")
    print(json.dumps(counts))
    return 0

