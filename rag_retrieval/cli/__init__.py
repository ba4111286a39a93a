"""``rag-retrieval``: one command for training, evaluation, serving and data, git-style subcommands.

    rag-retrieval --help | --version | help <command>
    rag-retrieval <command> --help
"""

from __future__ import annotations

import difflib
import importlib
import sys

from ..errors import run_command

# name -> (module:function, one line, an example)
COMMANDS = {
    "train": ("rag_retrieval.cli.train:train_main", "fine-tune a model of one kind from a YAML config",
              "rag-retrieval train reranker --config configs/reranker/minilm_pkgdesc_cpu.yaml"),
    "eval": ("rag_retrieval.cli.evaluate:main", "evaluate models on a reranking file or a corpus; compare them",
             "rag-retrieval eval --model minilm --rerank data/pkgdesc/test.jsonl.xz --max-queries 100"),
    "audit": ("rag_retrieval.cli.audit:main", "flag labels a teacher model contradicts (false negatives, weak positives)",
              "rag-retrieval audit train.jsonl --format pos_neg --teacher minilm --clean train.clean.jsonl"),
    "calibrate": ("rag_retrieval.cli.calibrate:main", "fit a reranker's score -> probability map on labelled pairs",
                  "rag-retrieval calibrate --model outputs/reranker/minilm_pkgdesc --data data/pkgdesc/dev.jsonl.xz"),
    "rerank": ("rag_retrieval.cli.rerank:main", "rerank each query's candidates in a file with a trained model",
               "rag-retrieval rerank --model outputs/reranker/minilm_pkgdesc --input q.jsonl --output ranked.jsonl"),
    "validate": ("rag_retrieval.cli.data:validate_main", "check a data file as training reads it, and describe it",
                 "rag-retrieval validate data/example/train.jsonl --format pos_neg"),
    "split": ("rag_retrieval.cli.data:split_main", "split a data file into train and eval files by query",
              "rag-retrieval split data.jsonl --format pos_neg --train-out train.jsonl --eval-out dev.jsonl"),
    "convert": ("rag_retrieval.cli.data:convert_main", "convert question/answer CSV, or data between formats",
                "rag-retrieval convert faq.csv train.jsonl --from csv --to pos_neg"),
    "mine": ("rag_retrieval.cli.data:mine_main", "mine hard negatives from a corpus (BM25, dense, fused, random)",
             "rag-retrieval mine pairs.jsonl train.jsonl --format pos_neg --corpus corpus.jsonl"),
}


def version() -> str:
    from .. import __version__

    return f"rag-retrieval {__version__}"


def usage() -> str:
    width = max(map(len, COMMANDS))
    rows = [f"  {name:<{width}}  {line}" for name, (_, line, _) in COMMANDS.items()]
    examples = [f"  {example}" for _, _, example in COMMANDS.values()]
    return "\n".join([
        "usage: rag-retrieval <command> [options]", "",
        "Fine-tune, evaluate and serve the retrieval models of a RAG system: embedding models, ColBERT,",
        "cross-encoder and LLM rerankers, PE-Rank.", "", "commands:", *rows, "",
        "rag-retrieval <command> --help shows a command's options; --debug (or RAG_RETRIEVAL_DEBUG=1) shows",
        "the traceback of an error; --version prints the version.", "", "examples:", *examples])


def command(name: str):
    """The main(argv) of a subcommand."""
    module, function = COMMANDS[name][0].split(":")
    return getattr(importlib.import_module(module), function)


def dispatch(argv) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    if argv[0] in ("-V", "--version", "version"):
        print(version())
        return 0
    if argv[0] == "help":
        if len(argv) == 1:
            print(usage())
            return 0
        argv = [argv[1], "--help"]
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        close = difflib.get_close_matches(name, list(COMMANDS), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        print(f"rag-retrieval: unknown command '{name}'.{hint} Commands: {', '.join(COMMANDS)} "
              f"(rag-retrieval --help)", file=sys.stderr)
        return 2
    if not any(word in ("-h", "--help") for word in rest):
        from ..utils.quiet import quiet_libraries

        quiet_libraries()
    return command(name)(rest)


def main(argv=None) -> None:
    """The ``rag-retrieval`` console script: a user's mistake is one ``error:`` line (exit 1)."""
    run_command(dispatch, argv)


if __name__ == "__main__":
    main()
