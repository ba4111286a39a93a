#!/usr/bin/env python
"""Turn a CSV/TSV of question,answer rows into pos_neg training data.

Each row's answer is the positive of its question; negatives are other rows' answers, sampled at
random (seeded). Rows with the same question are merged (several positives); an answer that is a
positive of the question is never its negative.

    python scripts/csv_to_jsonl.py faq.csv train.jsonl --question-column question --answer-column answer --negatives 7

Errors name the file, line and column; the output is written to a temporary file and renamed
only when everything succeeded, so a failed run leaves no partial file. The same as
`rag-retrieval convert faq.csv train.jsonl --from csv --to pos_neg`.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from rag_retrieval.data.tools import InputError, convert_file  # noqa: E402


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
    src = "tsv" if args.input.endswith(".tsv") else "csv"
    try:
        n = convert_file(args.input, src, "pos_neg", args.output, args.overwrite, args.question_column,
                         args.answer_column, args.delimiter, args.negatives, args.seed)
    except (InputError, ValueError, FileNotFoundError, FileExistsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{args.input} -> {n} queries with up to {args.negatives} negatives: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
