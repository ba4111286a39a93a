"""``rag-retrieval rerank``: rerank the candidates of each query in a file with any trained ranker."""

from __future__ import annotations

import os

from ..utils.commands import command_parser


def read_queries(path: str) -> list:
    """(query, docs) per line: ``{"query", "docs": [...]}``, or pos_neg / hits records (their
    documents are the candidates); every bad line is listed as file:line."""
    from ..data.inputs import iter_records
    from ..data.io import DataError

    out, problems = [], []
    for where, rec, errors in iter_records(path):
        if not errors and isinstance(rec, dict) and isinstance(rec.get("query"), str):
            if isinstance(rec.get("docs"), list):
                docs = rec["docs"]
            elif isinstance(rec.get("hits"), list):
                docs = [h.get("content") for h in rec["hits"] if isinstance(h, dict)]
            else:
                docs = [d for key in ("pos", "neg") for d in (rec.get(key) if isinstance(rec.get(key), list)
                                                              else [rec[key]] if key in rec else [])]
            if docs and all(isinstance(d, str) for d in docs):
                out.append((rec["query"], docs))
                continue
            errors = ["docs: expected a non-empty list of strings" if docs else "docs: missing"]
        problems.extend(f"{where}: {e}" for e in (errors or ['expected {"query", "docs": [...]}']))
    if problems:
        raise DataError(f"{len(problems)} bad line(s):\n  " + "\n  ".join(problems[:20]))
    if not out:
        raise DataError(f"{path}: no query to rerank")
    return out


def parser():
    from ..infer.rankers import RANKER_TYPES

    p = command_parser("rerank", "Rerank each query's candidates with a trained ranker (cross-encoder, LLM "
                       "reranker, ColBERT, PE-Rank) and write them best first.",
                       ["rag-retrieval rerank --model outputs/reranker/minilm_pkgdesc --input queries.jsonl "
                        "--output ranked.jsonl --top-k 10"],
                       'Input lines: {"query", "docs": [...]}, or pos_neg / hits records (their documents are the '
                       'candidates). Output lines: {"query", "ranked": [{"id", "text", "score", "rank"}, ...]}, '
                       "id being the document's index in its input line. The output is written through a "
                       "temporary file; an existing one is kept unless --overwrite.")
    p.add_argument("--model", required=True, help="a folder saved by this project, a FlagEmbedding / "
                                                  "sentence-transformers reranker folder, or a hub id")
    p.add_argument("--model-type", help=f"one of: {RANKER_TYPES} (default: read from the model's files)")
    p.add_argument("--input", required=True, help="queries with candidates (.jsonl, plain or compressed)")
    p.add_argument("--output", required=True, help=".jsonl file to write")
    p.add_argument("--top-k", type=int, help="keep the best K documents of each query (default: all)")
    p.add_argument("--long-doc", default="truncate", choices=["truncate", "max_chunk"],
                   help="a document longer than the model's window: cut it, or score its best chunk")
    p.add_argument("--chunk-overlap", type=int, default=32, help="max_chunk: tokens two chunks share")
    p.add_argument("--batch-size", type=int, default=64, help="scoring batch")
    p.add_argument("--max-length", type=int, help="tokens per (query, document) (default: the model's)")
    p.add_argument("--device", help="cpu, cuda, ...; several: cuda:0,cuda:1 or cuda:all (default: the GPU when "
                                    "there is one)")
    p.add_argument("--dtype", choices=["auto", "fp32", "bf16", "fp16"], help="autocast (default: bf16 on a GPU, "
                                                                             "fp32 on CPU)")
    p.add_argument("--normalize", action="store_true", help="scores through a sigmoid, in (0, 1)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    return p


def main(argv=None) -> int:
    from ..data.io import write_jsonl_atomic
    from ..models.hub import check_model

    args = parser().parse_args(argv)
    if args.top_k is not None and args.top_k < 1:
        raise ValueError(f"--top-k must be at least 1, got {args.top_k}")
    if os.path.exists(args.output) and not args.overwrite:
        raise FileExistsError(f"{args.output} exists; pass --overwrite to replace it")
    queries = read_queries(args.input)  # checked before the model loads
    check_model(args.model, "--model")
    from tqdm.auto import tqdm

    from ..infer import Reranker

    ranker = Reranker(args.model, model_type=args.model_type, device=args.device, dtype=args.dtype,
                      batch_size=args.batch_size, max_length=args.max_length)
    ranked = [ranker.rerank(q, docs, top_k=args.top_k, long_doc=args.long_doc, chunk_overlap=args.chunk_overlap,
                            normalize=args.normalize).to_dict()
              for q, docs in tqdm(queries, desc="rerank", unit="query")]
    write_jsonl_atomic(ranked, args.output, overwrite=args.overwrite)
    print(f"reranked {len(ranked)} queries: {args.output}")
    return 0
