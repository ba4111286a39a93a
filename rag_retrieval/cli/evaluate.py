"""``rag-retrieval eval``: evaluate one model, or compare several, on a reranking file and/or a corpus."""

from __future__ import annotations

import json
import os

from ..utils.commands import command_parser, parse_columns


def load_model(name: str, dtype=None, max_length=None):
    """A model for evaluation: a bi-encoder (sentence-transformers layout, alias or hub id) or any
    ranker the inference API loads (cross-encoders, LLM rerankers, ColBERT; ``dtype``: their autocast)."""
    from .. import kinds
    from ..models import BiEncoder
    from ..models.hub import check_model

    path = check_model(name, "--model")
    if not os.path.isdir(path) or kinds.detect(path) in ("embedding", None):
        return BiEncoder.from_pretrained(name, passage_max_len=max_length)
    from ..infer import Reranker

    return Reranker(name, dtype=dtype, max_length=max_length)


def parser():
    p = command_parser("eval", "Evaluate models and print a table of ranking metrics: rerank each query's "
                       "candidates (--rerank) and/or retrieve from a corpus (--corpus with --queries, bi-encoders).",
                       ["rag-retrieval eval --model minilm --rerank data/pkgdesc/test.jsonl.xz --max-queries 100",
                        "rag-retrieval eval --model minilm --model outputs/embedding/minilm_pkgdesc "
                        "--rerank data/pkgdesc/test.jsonl.xz --json cmp.json   # compare: deltas, 95% intervals, p-values",
                        "rag-retrieval eval --model minilm --corpus corpus.jsonl --queries queries.jsonl --k 10 100",
                        "rag-retrieval eval --model minilm --beir scifact --split test --k 10 100",
                        "rag-retrieval eval --model minilm --rerank-with outputs/reranker/minilm_pkgdesc "
                        "--corpus data/pkgdesc/corpus.jsonl.xz --queries data/pkgdesc/test_queries.jsonl.xz --top-k 100"],
                       "A model is a folder saved by this project, a sentence-transformers or FlagEmbedding folder, "
                       "a hub id or an offline alias (minilm); its kind is read from its files. Files are checked "
                       "before any model loads.")
    p.add_argument("--model", action="append", required=True, help="model to evaluate; repeat to compare several")
    p.add_argument("--rerank", metavar="FILE", help="reranking file: each query's positives ranked among its "
                                                    "candidates (.jsonl, plain or compressed)")
    p.add_argument("--format", default="pos_neg", choices=["pos_neg", "hits", "pointwise"],
                   help="format of --rerank (hits: graded labels give graded NDCG; pointwise: grouped by query)")
    p.add_argument("--columns", type=parse_columns, help="--rerank's keys named otherwise: ours=theirs,..., e.g. "
                                                         "query=question,pos=answer")
    p.add_argument("--label-range", type=float, nargs=2, metavar=("MIN", "MAX"),
                   help="--rerank's labels mapped linearly from [MIN, MAX] to [0, 1] (rank labels -1 best: -20 -1)")
    p.add_argument("--corpus", metavar="FILE", help="retrieval: corpus .jsonl of {id, text}")
    p.add_argument("--queries", metavar="FILE", help="retrieval: queries .jsonl of {qid, query, pos_ids}")
    p.add_argument("--beir", metavar="DIR", help="retrieval on a BEIR folder: corpus.jsonl, queries.jsonl, "
                                                 "qrels/<split>.tsv (graded)")
    p.add_argument("--split", default="test", help="--beir: the qrels split")
    p.add_argument("--max-queries", type=int, help="evaluate the first N queries only (default: all)")
    p.add_argument("--k", type=int, nargs="+", default=[1, 10, 100], help="cut-offs of MRR@k, NDCG@k, Recall@k")
    p.add_argument("--batch-size", type=int, default=128, help="encoding / scoring batch")
    p.add_argument("--max-length", type=int, help="tokens per passage (bi-encoders) or per pair (rerankers) "
                                                  "(default: the model's)")
    p.add_argument("--dtype", choices=["auto", "fp32", "bf16", "fp16"],
                   help="rerankers: autocast (default: bf16 on a GPU, fp32 on CPU)")
    p.add_argument("--rerank-with", metavar="RERANKER", help="retrieve, then rerank (with --corpus/--queries or "
                   "--beir): each --model retrieves --top-k passages per query, RERANKER reorders them; prints the "
                   "first stage's Recall@K, the metrics after reranking and the seconds per query of each stage")
    p.add_argument("--top-k", type=int, default=100, help="--rerank-with: passages the first stage hands on (default 100)")
    p.add_argument("--output", metavar="FILE", help="also write the metrics as JSON to FILE")
    p.add_argument("--json", metavar="FILE", help="with two or more --model: also write the comparisons with the "
                   "first model (delta, paired bootstrap 95%% interval, randomization p-value per metric) as JSON")
    return p


def main(argv=None) -> dict:
    from ..eval.evaluators import RerankEvaluator, RetrievalEvaluator, format_table
    from ..eval.metrics import means
    from ..models.hub import check_model

    p = parser()
    args = p.parse_args(argv)
    if not args.rerank and not args.corpus and not args.beir:
        p.error("give --rerank FILE, --corpus FILE --queries FILE, or --beir DIR")
    if bool(args.corpus) != bool(args.queries):
        p.error("--corpus and --queries go together")
    if args.max_queries is not None and args.max_queries < 1:
        p.error(f"--max-queries must be at least 1, got {args.max_queries}")
    if any(k < 1 for k in args.k):
        p.error(f"--k: every cut-off must be at least 1, got {args.k}")
    if args.rerank_with and not (args.corpus or args.beir):
        p.error("--rerank-with reranks what a first stage retrieves: give --corpus FILE --queries FILE or --beir DIR")
    if args.top_k < 1:
        p.error(f"--top-k must be at least 1, got {args.top_k}")
    from .. import kinds

    for name in args.model:
        path = check_model(name, "--model")
        kind = kinds.detect(path) if os.path.isdir(path) else None
        if (args.corpus or args.beir) and kind not in (None, "embedding"):
            p.error(f"--model {name} is a {kind} model: retrieval over a corpus (--corpus, --beir) needs a bi-encoder; "
                    f"rerank with it on --rerank FILE")
    evaluators = []  # files are read (and checked) before any model loads
    if args.rerank:
        evaluators.append(RerankEvaluator(args.rerank, args.max_queries, args.k, args.batch_size, fmt=args.format,
                                          columns=args.columns, label_range=args.label_range))
    if args.corpus:
        evaluators.append(RetrievalEvaluator(args.corpus, args.queries, args.max_queries, args.k, args.batch_size))
    if args.beir:
        evaluators.append(RetrievalEvaluator(max_queries=args.max_queries, k_values=args.k, batch_size=args.batch_size,
                                             name="beir", beir=args.beir, split=args.split))
    if args.json and len(args.model) < 2:
        p.error("--json writes comparisons between models: give two or more --model (the first is the baseline)")
    if args.rerank_with:
        check_model(args.rerank_with, "--rerank-with")
    reranker = load_model(args.rerank_with, args.dtype, args.max_length) if args.rerank_with else None
    results, per_query, texts = {}, {}, {}  # a table row per model; each model's metrics per query
    for name in args.model:
        model = load_model(name, args.dtype, args.max_length)
        per_query[name] = {}
        for ev in evaluators:
            if reranker is not None and isinstance(ev, RetrievalEvaluator):
                values, queries, seconds = ev.rerank_per_query(model, reranker, args.top_k)
                print(f"{name} -> {args.rerank_with}: corpus encoded in {seconds['corpus_encoding']:.1f} s; per query: "
                      f"first stage {1000 * seconds['first_stage_per_query']:.1f} ms, rerank of the top {args.top_k} "
                      f"{1000 * seconds['rerank_per_query']:.1f} ms")
            else:
                values, queries = ev.per_query(model)
            per_query[name].update(values)
            texts.update(queries)
        results[name] = means(per_query[name])
    print(format_table(results))
    if len(args.model) > 1:
        comparisons = compare_models(args.model, per_query, texts)
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"models": args.model, "comparisons": comparisons}, f, indent=1, ensure_ascii=False)
    if args.output:
        with open(args.output, "w") as f:
            json.dump(results, f, indent=1)
    return results


def compare_models(names: list, per_query: dict, texts: dict) -> list:
    """Each model against the first, per metric (printed: the table and each model's worst regressions)."""
    from ..eval.significance import compare, format_comparisons, headline, worst_regressions

    baseline, rows = names[0], []
    for name in names[1:]:
        rows += [{"baseline": baseline, "model": name, **row} for row in compare(per_query[baseline], per_query[name])]
    print("\n" + format_comparisons(rows))
    main_metric = headline(list(per_query[baseline]))
    for name in names[1:]:
        worst = worst_regressions(texts[main_metric], per_query[baseline][main_metric], per_query[name][main_metric])
        if worst:
            print(f"\n{name}: the queries it loses most {main_metric} on, against {baseline}:")
            for w in worst:
                print(f"  {w['baseline']:.4f} -> {w['model']:.4f}  {w['query'][:100]}")
    return rows
