#!/usr/bin/env python
"""Turn a CSV/TSV of question,answer rows into pos_neg training data.

Each row's answer is the positive of its question; negatives are other rows' answers, sampled at
random (seeded). Rows with the same question are merged (several positives); an answer that is a
positive of the question is never its negative.

    python scripts/csv_to_jsonl.py faq.csv train.jsonl --question-column question --answer-column answer --negatives 7

Errors name the file, line and column; the output is written to a temporary file and renamed
only when everything succeeded, so a failed run leaves no partial file.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from rag_retrieval.data.io import write_jsonl_atomic  # noqa: E402


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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("--question-column", default="question")
    parser.add_argument("--answer-column", default="answer")
    parser.add_argument("--delimiter", default=None, help="default: tab for .tsv, comma otherwise")
    parser.add_argument("--negatives", type=int, default=7)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    delimiter = args.delimiter or ("\t" if args.input.endswith(".tsv") else ",")
    try:
        rows = read_pairs(args.input, args.question_column, args.answer_column, delimiter)
        records = to_pos_neg(rows, args.negatives, args.seed)
        write_jsonl_atomic(records, args.output, args.overwrite)
    except (InputError, FileNotFoundError, FileExistsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{len(rows)} rows -> {len(records)} queries with up to {args.negatives} negatives: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
