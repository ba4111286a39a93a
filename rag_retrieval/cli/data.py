"""The data commands: ``validate``, ``split``, ``convert`` and ``mine`` (the work is in :mod:`rag_retrieval.data`)."""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
from typing import Optional, Sequence

from ..data.io import FORMATS
from ..utils.commands import command_parser, parse_columns

FORMAT_HELP = ("pos_neg: {query, pos: [..], neg: [..]}; hits: {query, hits: [{content, label}]}; "
               "pointwise: {query, content, label}")
INPUT_HELP = ("a .jsonl file (plain or compressed: .gz, .xz, .bz2, .zst), a folder of .jsonl shards, a folder saved "
              "by datasets.save_to_disk, or hf://datasets/ORG/NAME[:split]")


def validate_parser():
    p = command_parser("validate", "Check every record of a data file as training would read it, and describe the "
                       "data: queries, positives and negatives per query, duplicates, lengths, leakage.",
                       ["rag-retrieval validate data/example/train.jsonl --format pos_neg",
                        "rag-retrieval validate train.jsonl.xz --format hits --tokenizer minilm --against test.jsonl"],
                       "Every bad line is listed as file:line: key: problem; the exit status is 1 when there is one.")
    p.add_argument("path", help=INPUT_HELP)
    p.add_argument("--format", required=True, choices=FORMATS, help=FORMAT_HELP)
    p.add_argument("--tokenizer", help="count lengths in tokens of this tokenizer (folder, hub id or alias such as "
                                       "minilm); default: whitespace words")
    p.add_argument("--against", help="another file (e.g. the eval set): report the queries it shares with this one")
    p.add_argument("--columns", type=parse_columns, help="keys named otherwise: ours=theirs,..., e.g. "
                                                         "query=question,pos=answer")
    p.add_argument("--json", metavar="FILE", help="also write the report as JSON to FILE")
    return p


def validate_main(argv: Optional[Sequence[str]] = None) -> int:
    from ..data.common import print_stats
    from ..data.tools import validate_file

    args = validate_parser().parse_args(argv)
    tokenizer = None
    if args.tokenizer:
        from ..models.hub import check_model
        from ..models.weights import load_tokenizer

        tokenizer = load_tokenizer(check_model(args.tokenizer, "--tokenizer"))
    report = validate_file(args.path, args.format, tokenizer, args.against, args.columns)
    for error in report["errors"]:
        print(error, file=sys.stderr)
    print(f"{args.path} ({args.format}): {'OK' if not report['errors'] else str(len(report['errors'])) + ' problem(s)'}")
    print_stats(report["stats"])
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1, ensure_ascii=False)
    return 1 if report["errors"] else 0


def split_parser():
    p = command_parser("split", "Split a data file into a train and an eval file by query: every record of a query "
                       "lands on the same side, so no eval query is seen in training.",
                       ["rag-retrieval split data.jsonl --format pos_neg --train-out train.jsonl --eval-out dev.jsonl"],
                       "Records are checked first; nothing is written when one is bad.")
    p.add_argument("path", help=INPUT_HELP)
    p.add_argument("--format", required=True, choices=FORMATS, help=FORMAT_HELP)
    p.add_argument("--eval-fraction", type=float, default=0.1, help="share of the queries for the eval file")
    p.add_argument("--train-out", required=True, help="train file to write")
    p.add_argument("--eval-out", required=True, help="eval file to write")
    p.add_argument("--seed", type=int, default=0, help="seed of the query shuffle")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    return p


def split_main(argv: Optional[Sequence[str]] = None) -> int:
    from ..data.tools import split_file

    args = split_parser().parse_args(argv)
    counts = split_file(args.path, args.format, args.eval_fraction, args.train_out, args.eval_out, args.seed,
                        args.overwrite)
    print(json.dumps(counts))
    return 0


def convert_parser():
    p = command_parser("convert", "Convert question/answer CSV or TSV files to training data, or data between the "
                       "formats (pos_neg, hits, pointwise).",
                       ["rag-retrieval convert faq.csv train.jsonl --from csv --to pos_neg --negatives 7",
                        "rag-retrieval convert train.jsonl hits.jsonl --from pos_neg --to hits"],
                       "CSV rows become one query each with its answers as positives and negatives sampled from "
                       "the other answers; pointwise records of one query are grouped. Every input record is "
                       "checked first: on any problem nothing is written.")
    p.add_argument("input", help="a .csv/.tsv or .jsonl file (plain or compressed), or a BEIR folder")
    p.add_argument("output", help=".jsonl file to write")
    p.add_argument("--from", dest="src", required=True, choices=("csv", "tsv", "beir", *FORMATS), help="input format")
    p.add_argument("--to", dest="dst", required=True, choices=FORMATS, help="output format")
    p.add_argument("--question-column", default="question", help="csv/tsv: column of the questions")
    p.add_argument("--answer-column", default="answer", help="csv/tsv: column of the answers")
    p.add_argument("--delimiter", help="csv/tsv: field delimiter (default: comma for csv, tab for tsv)")
    p.add_argument("--negatives", type=int, default=7, help="csv/tsv: negatives sampled from the other answers; "
                                                            "beir with --mine: negatives mined per query")
    p.add_argument("--split", default="train", help="beir: the qrels split to convert")
    p.add_argument("--mine", choices=("bm25", "dense", "bm25+dense", "random"),
                   help="beir: mine negatives from its corpus with this method (rag-retrieval mine; default: none)")
    p.add_argument("--columns", type=parse_columns, help="jsonl input: keys named otherwise, ours=theirs,...")
    p.add_argument("--seed", type=int, default=42, help="seed of the negative sampling")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    return p


def convert_main(argv: Optional[Sequence[str]] = None) -> int:
    from ..data.convert import convert_file

    args = convert_parser().parse_args(argv)
    if args.mine and args.src != "beir":
        raise ValueError("--mine is for --from beir (other inputs: rag-retrieval mine)")
    if args.mine:  # positives from the qrels, then negatives mined from the folder's corpus
        import os
        import tempfile

        from ..data.mining import MineOptions, mine_file

        if os.path.exists(args.output) and not args.overwrite:
            raise FileExistsError(f"{args.output} exists; pass --overwrite to replace it")
        with tempfile.TemporaryDirectory() as tmp:
            pairs = os.path.join(tmp, "pairs.jsonl")
            n = convert_file(args.input, "beir", "pos_neg", pairs, split=args.split)
            mine_file(pairs, "pos_neg", args.output, MineOptions(corpus=args.input, method=args.mine,
                                                                 negatives=args.negatives, seed=args.seed,
                                                                 overwrite=args.overwrite))
        print(f"{args.input} (beir, {args.split}) -> {args.output} (pos_neg, {args.mine} negatives): {n} records")
        return 0
    n = convert_file(args.input, args.src, args.dst, args.output, args.overwrite, args.question_column,
                     args.answer_column, args.delimiter, args.negatives, args.seed, args.split, args.columns)
    print(f"{args.input} ({args.src}) -> {args.output} ({args.dst}): {n} records")
    return 0


def mine_parser():
    from ..data.mining import INDEXES, METHODS, SAMPLING
    from ..utils.text import BM25_TOKENIZERS

    p = command_parser("mine", "Mine hard negatives: for each query of the input, retrieve candidates from a corpus "
                       "and keep some of those ranked within a range as its negatives; writes pos_neg records.",
                       ["rag-retrieval mine pairs.jsonl train.jsonl --format pos_neg --corpus corpus.jsonl",
                        "rag-retrieval mine pairs.jsonl train.jsonl --format pos_neg --corpus corpus.jsonl "
                        "--method dense --model minilm --range 10-100 --relative-margin 0.05 --exclude test.jsonl"],
                       "Documents with a label > 0 are the positives. Ranks count the non-positive candidates only "
                       "(1 = the hardest). The false-negative filter (--margin, --relative-margin) is off unless "
                       "asked for.")
    p.add_argument("input", help="query/positive records, " + INPUT_HELP)
    p.add_argument("output", help="pos_neg .jsonl file to write")
    p.add_argument("--format", required=True, choices=FORMATS, help=FORMAT_HELP)
    p.add_argument("--corpus", help="passages: .jsonl with 'text' (and 'title'), or one passage per line "
                                    "(default: every document of the input)")
    p.add_argument("--method", default="bm25", choices=METHODS, help="how candidates are retrieved")
    p.add_argument("--model", default="minilm", help="dense: the embedder (folder of ours, hub id or alias)")
    p.add_argument("--negatives", type=int, default=8, help="negatives kept per query")
    p.add_argument("--range", default="1-100", help="FIRST-LAST ranks among the non-positive candidates")
    p.add_argument("--sampling", default="top", choices=SAMPLING, help="top: the best ranks of the range; random: "
                                                                       "a seeded sample of it")
    p.add_argument("--margin", type=float, help="drop candidates scoring at or above (weakest positive - MARGIN), "
                                                "e.g. 0 (default: no filter)")
    p.add_argument("--relative-margin", type=float, help="drop candidates scoring at or above (weakest positive - "
                                                         "R * |weakest positive|), e.g. 0.05 for dense scores "
                                                         "(default: no filter)")
    p.add_argument("--exclude", help="records whose positives are never mined, e.g. the eval set")
    p.add_argument("--exclude-format", default="pos_neg", choices=FORMATS, help="format of --exclude")
    p.add_argument("--seed", type=int, default=42, help="seed of random sampling")
    p.add_argument("--batch-size", type=int, default=64, help="dense: encoding batch")
    p.add_argument("--query-max-len", type=int, default=64, help="dense: query tokens")
    p.add_argument("--passage-max-len", type=int, default=256, help="dense: passage tokens")
    p.add_argument("--dtype", choices=("auto", "fp32", "bf16", "fp16"),
                   help="dense: autocast (auto: bf16 where the CPU/GPU runs it fast; default fp32)")
    p.add_argument("--device", help="dense: cpu, cuda, cuda:1, ... (default: the GPU when there is one)")
    p.add_argument("--bm25-tokenizer", default="auto", choices=BM25_TOKENIZERS,
                   help="bm25: auto (CJK text as character bigrams, else English words with stemming), english, cjk, "
                        "whitespace")
    p.add_argument("--index", default="auto", choices=INDEXES, help="dense: exact search in torch or FAISS "
                                                                    "(auto: FAISS when installed)")
    p.add_argument("--columns", type=parse_columns, help="the input's keys named otherwise: ours=theirs,...")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.add_argument("--json", metavar="FILE", help="also write the summary as JSON to FILE")
    return p


def mine_main(argv: Optional[Sequence[str]] = None) -> int:
    from ..data.common import print_stats
    from ..data.mining import MineOptions, mine_file, parse_range

    args = mine_parser().parse_args(argv)
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(MineOptions) if hasattr(args, f.name)}
    options = MineOptions(**given, rank_range=parse_range(args.range))
    if options.method in ("dense", "bm25+dense"):
        from ..models.hub import check_model

        check_model(options.model, "--model")
    logging.getLogger("rag_retrieval").setLevel(logging.INFO)
    stats = mine_file(args.input, args.format, args.output, options)
    summary = dataclasses.asdict(stats)
    print(f"{args.input} -> {args.output} ({args.method}, ranks {args.range}, {args.sampling}):")
    print_stats(summary)
    if stats.queries_without_negatives or stats.queries_short_of_negatives:
        print(f"warning: {stats.queries_without_negatives} of {stats.queries} queries got no negative and "
              f"{stats.queries_short_of_negatives} fewer than {options.negatives} (a wider --range, a looser margin "
              f"or a larger corpus gives more)", file=sys.stderr)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=1)
    return 0
