#!/usr/bin/env python
"""Score a pos_neg file with a teacher reranker and write pos_scores / neg_scores (distillation data).

    python scripts/score_with_teacher.py --model outputs/reranker/minilm_pkgdesc \
        --input data/pkgdesc/train.jsonl.xz --output data/pkgdesc/train_scored.jsonl

The teacher is any model the inference API (``rag_retrieval.Reranker``) loads: cross-encoders
(ours, bge-reranker, ...), LLM rerankers (ours, bge-reranker-v2-gemma, ...), ColBERT. Input records are checked
first (file:line errors); the output is written through a temporary file and renamed at the end.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from rag_retrieval.data.inputs import iter_records  # noqa: E402
from rag_retrieval.data.io import DataError, scan, write_jsonl_atomic  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="teacher: a path, hub id or alias")
    parser.add_argument("--model-type", default=None, help="detected from the model files when omitted")
    parser.add_argument("--input", required=True, help="pos_neg JSONL")
    parser.add_argument("--output", required=True)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-length", type=int, default=None)
    parser.add_argument("--dtype", default=None, help="autocast: fp32, bf16, fp16 (default: bf16 on GPU, fp32 on CPU)")
    parser.add_argument("--max-records", type=int, default=None, help="score only the first N records")
    parser.add_argument("--max-negatives", type=int, default=None,
                        help="keep (and score) only the first K negatives of each record")
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    try:
        if os.path.exists(args.output) and not args.overwrite:
            raise FileExistsError(f"{args.output} exists; pass --overwrite to replace it")
        scan([args.input], "pos_neg")
        records = [rec for _, rec, _ in iter_records(args.input)][: args.max_records]
    except (DataError, FileExistsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    from tqdm.auto import tqdm

    from rag_retrieval import Reranker

    teacher = Reranker(args.model, model_type=args.model_type, batch_size=args.batch_size, max_length=args.max_length,
                       dtype=args.dtype)
    for rec in tqdm(records, desc="scoring", unit="query"):
        if args.max_negatives is not None:
            rec["neg"] = (rec.get("neg") or [])[: args.max_negatives]
            rec.pop("neg_scores", None)
        docs = rec["pos"] + (rec.get("neg") or [])
        scores = teacher.compute_score([(rec["query"], d) for d in docs])
        if scores and isinstance(scores[0], list):
            print(f"error: {args.model} gives one score per cutoff layer ({len(scores[0])}); load the teacher with "
                  f"one cutoff layer", file=sys.stderr)
            return 2
        rec["pos_scores"] = [round(s, 6) for s in scores[: len(rec["pos"])]]
        rec["neg_scores"] = [round(s, 6) for s in scores[len(rec["pos"]) :]]
    write_jsonl_atomic(records, args.output, overwrite=args.overwrite)
    print(f"scored {len(records)} queries with {args.model}: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
