"""Data tools behind ``rag-retrieval validate`` and ``rag-retrieval split``.

    rag-retrieval validate data.jsonl --format pos_neg --tokenizer minilm --against test.jsonl
    rag-retrieval split data.jsonl --format pos_neg --eval-fraction 0.1 --train-out train.jsonl --eval-out dev.jsonl
    rag-retrieval convert faq.csv train.jsonl --from csv --to pos_neg --negatives 7
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import sys
from typing import Optional, Sequence

from .io import FORMATS, iter_jsonl, to_example, validate_record, write_jsonl_atomic

class InputError(ValueError):
    """Malformed CSV input; the message names the file, line and column."""


def read_pairs(path: str, question_col: str, answer_col: str, delimiter: str) -> list:
    """(line, question, answer) rows; raises InputError naming file, line and column."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f, delimiter=delimiter, strict=True)
            header = reader.fieldnames or []
            missing = [c for c in (question_col, answer_col) if c not in header]
            if missing:
                raise InputError(f"{path}:1: missing column(s) {missing}; the header has {header}")
            rows = []
            for record in reader:
                line = reader.line_num
                q, a = (record.get(question_col) or "").strip(), (record.get(answer_col) or "").strip()
                if None in record:
                    raise InputError(f"{path}:{line}: more fields than the header's {len(header)}")
                if not q or not a:
                    raise InputError(f"{path}:{line}: empty '{question_col if not q else answer_col}'")
                rows.append((line, q, a))
    except UnicodeDecodeError as err:
        raise InputError(f"{path}: not valid UTF-8 ({err.reason} at byte {err.start})") from None
    except csv.Error as err:
        raise InputError(f"{path}:{reader.line_num}: bad CSV ({err})") from None
    if not rows:
        raise InputError(f"{path}: no rows")
    return rows


def to_pos_neg(rows: list, negatives: int, seed: int) -> list:
    """Group answers by question and sample negatives from the other answers."""
    by_question: dict = {}
    for _, q, a in rows:
        by_question.setdefault(q, [])
        if a not in by_question[q]:
            by_question[q].append(a)
    answers = sorted({a for _, _, a in rows})
    rng = random.Random(seed)
    out = []
    for q, pos in by_question.items():
        pool = [a for a in answers if a not in pos]
        neg = rng.sample(pool, min(negatives, len(pool)))
        out.append({"query": q, "pos": pos, "neg": neg})
    return out


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


def _spread(values: list) -> dict:
    return {"min": min(values), "mean": round(sum(values) / len(values), 2), "max": max(values)} if values else {}


def _check_records(path: str, fmt: str) -> tuple:
    """Read ``path`` with the training readers' checks: (good records, problems as
    ``file:line: key: problem``, number of bad lines)."""
    good, errors, bad = [], [], 0
    for line_no, record, problems in iter_jsonl(path):
        problems = problems or validate_record(record, fmt)
        if problems:
            bad += 1
            errors.extend(f"{path}:{line_no}: {p}" for p in problems)
        else:
            good.append(record)
    return good, errors, bad


def _good_records(path: str, fmt: str) -> list:
    """Every record of ``path``; InputError listing each problem when any record is bad."""
    good, errors, _ = _check_records(path, fmt)
    if errors:
        raise InputError("bad records, nothing written:\n  " + "\n  ".join(errors))
    return good


def validate_file(path: str, fmt: str, tokenizer=None, against: Optional[str] = None) -> dict:
    """Check every record of ``path`` (as the training readers do) and describe the data.

    Returns ``{"errors": ["file:line: key: problem", ...], "stats": {...}}``: records, queries,
    positives and negatives per query, duplicate queries, duplicate documents within a query,
    negatives equal to a positive of the same query, length percentiles (in tokens of
    ``tokenizer``, else in whitespace words), and the queries also found in ``against``.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format '{fmt}'; choose one of: {', '.join(FORMATS)}")
    records, errors, n_bad = _check_records(path, fmt)
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
        "positives_per_query": _spread([len(e["pos"]) for e in per_query.values()]),
        "negatives_per_query": _spread([len(e["neg"]) for e in per_query.values()]),
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
    records = _good_records(path, fmt)
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


def _print_stats(stats: dict) -> None:
    for key, value in stats.items():
        print(f"  {key}: {json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else value}")


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
    _print_stats(report["stats"])
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


def to_records(ex, fmt: str) -> list:
    """One :class:`Example` as records of ``fmt`` (pointwise: one per document). To pos_neg,
    documents with a label > 0 are positives (graded labels become binary).

    >>> from rag_retrieval.data.io import Example
    >>> ex = Example("q", ["a", "b"], [2.0, 0.0], [0.9, 0.1])
    >>> to_records(ex, "pos_neg")
    [{'query': 'q', 'pos': ['a'], 'neg': ['b'], 'pos_scores': [0.9], 'neg_scores': [0.1]}]
    >>> to_records(ex, "pointwise")[1]
    {'query': 'q', 'content': 'b', 'label': 0.0, 'score': 0.1}
    """
    extra = {"prompt": ex.prompt} if ex.prompt is not None else {}
    items = list(zip(ex.docs, ex.labels, ex.scores or [None] * len(ex.docs)))
    if fmt == "pointwise":
        return [{"query": ex.query, "content": d, "label": lab, **({"score": s} if s is not None else {}), **extra}
                for d, lab, s in items]
    if fmt == "hits":
        return [{"query": ex.query, "hits": [{"content": d, "label": lab, **({"score": s} if s is not None else {})}
                                             for d, lab, s in items], **extra}]
    pos = [(d, s) for d, lab, s in items if lab > 0]
    neg = [(d, s) for d, lab, s in items if lab <= 0]
    if not pos:
        raise ValueError(f"query {ex.query!r} has no document with a label > 0: pos_neg needs a positive")
    rec = {"query": ex.query, "pos": [d for d, _ in pos], "neg": [d for d, _ in neg], **extra}
    if ex.scores is not None:
        rec["pos_scores"], rec["neg_scores"] = [s for _, s in pos], [s for _, s in neg]
    return [rec]


def convert_file(path: str, src: str, dst: str, out: str, overwrite: bool = False, question_column: str = "question",
                 answer_column: str = "answer", delimiter: Optional[str] = None, negatives: int = 7,
                 seed: int = 42) -> int:
    """Convert ``path`` from ``src`` (csv, tsv, pos_neg, hits, pointwise) to ``dst`` (pos_neg, hits,
    pointwise) into ``out``; returns the number of records written. CSV/TSV question,answer rows
    become pos_neg first (answers grouped by question, ``negatives`` sampled from other answers);
    pointwise records of one query are grouped. Every input record is checked first: on any
    problem nothing is written (errors name file:line). Raises InputError / ValueError."""
    if dst not in FORMATS:
        raise ValueError(f"--to {dst!r}: choose one of {', '.join(FORMATS)}")
    if os.path.exists(out) and not overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite to replace it")
    if src in ("csv", "tsv"):
        rows = read_pairs(path, question_column, answer_column, delimiter or ("\t" if src == "tsv" else ","))
        src, examples = "pos_neg", [to_example(r, "pos_neg") for r in to_pos_neg(rows, negatives, seed)]
    elif src in FORMATS:
        examples, grouped = [], {}
        for record in _good_records(path, src):
            ex = to_example(record, src)
            if src != "pointwise":
                examples.append(ex)
            elif ex.query not in grouped:  # one document per record: group a query's records
                grouped[ex.query] = ex
                examples.append(ex)
            else:
                g = grouped[ex.query]
                g.docs, g.labels = g.docs + ex.docs, g.labels + ex.labels
                g.scores = (g.scores + ex.scores) if g.scores is not None and ex.scores is not None else None
    else:
        raise ValueError(f"--from {src!r}: choose one of csv, tsv, {', '.join(FORMATS)}")
    records = [rec for ex in examples for rec in to_records(ex, dst)]
    write_jsonl_atomic(records, out, overwrite=overwrite)
    return len(records)


def convert_main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="rag-retrieval convert", description=convert_file.__doc__)
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("--from", dest="src", required=True, choices=("csv", "tsv", *FORMATS))
    parser.add_argument("--to", dest="dst", required=True, choices=FORMATS)
    parser.add_argument("--question-column", default="question")
    parser.add_argument("--answer-column", default="answer")
    parser.add_argument("--delimiter", help="CSV delimiter (default: comma for csv, tab for tsv)")
    parser.add_argument("--negatives", type=int, default=7, help="csv/tsv: negatives sampled from other answers")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    try:
        n = convert_file(args.input, args.src, args.dst, args.output, args.overwrite, args.question_column,
                         args.answer_column, args.delimiter, args.negatives, args.seed)
    except (ValueError, FileExistsError, FileNotFoundError) as err:
        sys.exit(f"error: {err}")
    print(f"{args.input} ({args.src}) -> {args.output} ({args.dst}): {n} records")
    return 0
