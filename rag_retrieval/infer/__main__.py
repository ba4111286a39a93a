"""Rerank the candidates of each query in a JSONL file.

    rag-retrieval rerank --model outputs/reranker/minilm_pkgdesc --input queries.jsonl --output ranked.jsonl

Input lines: ``{"query", "docs": [...]}``, or ``pos_neg`` / ``hits`` records (their documents are
the candidates). Output lines: ``{"query", "ranked": [{"id", "text", "score", "rank"}, ...]}``,
``id`` being the document's index in the input line. The output is written through a
temporary file and renamed at the end; an existing output is kept unless --overwrite.
"""

from __future__ import annotations

import argparse
import sys

from ..data.io import DataError, iter_jsonl, write_jsonl_atomic


def read_queries(path: str) -> list:
    """(query, docs) per line; file:line errors for anything else."""
    out, problems = [], []
    for line_no, rec, errors in iter_jsonl(path):
        if not errors and isinstance(rec, dict) and isinstance(rec.get("query"), str):
            if isinstance(rec.get("docs"), list):
                docs = rec["docs"]
            elif isinstance(rec.get("hits"), list):
                docs = [h.get("content") for h in rec["hits"] if isinstance(h, dict)]
            else:
                docs = (rec.get("pos") or []) + (rec.get("neg") or [])
            if all(isinstance(d, str) for d in docs):
                out.append((rec["query"], docs))
                continue
            errors = ["docs: every candidate must be a string"]
        problems.extend(f"{path}:{line_no}: {e}" for e in (errors or ['expected {"query", "docs": [...]}']))
    if problems:
        raise DataError(f"{len(problems)} bad line(s):\n  " + "\n  ".join(problems[:20]))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="rag-retrieval rerank", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--model-type", default=None, help="detected from the model files when omitted")
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--top-k", type=int, default=None)
    parser.add_argument("--long-doc", default="truncate", choices=["truncate", "max_chunk"])
    parser.add_argument("--chunk-overlap", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-length", type=int, default=None)
    parser.add_argument("--device", default=None, help="cuda, cpu, ...; several: cuda:0,cuda:1 or cuda:all")
    parser.add_argument("--dtype", default=None, choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--normalize", action="store_true", help="sigmoid scores")
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    import os

    try:
        if os.path.exists(args.output) and not args.overwrite:
            raise FileExistsError(f"{args.output} exists; pass --overwrite to replace it")
        queries = read_queries(args.input)  # checked before the model loads
    except (DataError, FileExistsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    from tqdm.auto import tqdm

    from . import Reranker

    ranker = Reranker(args.model, model_type=args.model_type, device=args.device, dtype=args.dtype,
                      batch_size=args.batch_size, max_length=args.max_length)
    ranked = [ranker.rerank(q, docs, top_k=args.top_k, long_doc=args.long_doc, chunk_overlap=args.chunk_overlap,
                            normalize=args.normalize).to_dict()
              for q, docs in tqdm(queries, desc="rerank", unit="query")]
    write_jsonl_atomic(ranked, args.output, overwrite=args.overwrite)
    print(f"reranked {len(ranked)} queries: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
