"""``rag-retrieval`` command: one entry for training and evaluation.

    rag-retrieval train embedding --config configs/embedding/minilm_pkgdesc_cpu.yaml key=value ...
    rag-retrieval eval --model outputs/x --rerank data/pkgdesc/test.jsonl
    rag-retrieval rerank --model outputs/reranker/x --input queries.jsonl --output ranked.jsonl
    rag-retrieval validate data.jsonl --format pos_neg [--tokenizer minilm] [--against test.jsonl]
    rag-retrieval split data.jsonl --format pos_neg --eval-fraction 0.1 --train-out a.jsonl --eval-out b.jsonl
    rag-retrieval convert faq.csv train.jsonl --from csv --to pos_neg --negatives 7
    rag-retrieval mine pairs.jsonl train.jsonl --format pos_neg --corpus corpus.jsonl --method dense --range 10-100
"""

from __future__ import annotations

import importlib
import sys

COMMANDS = {"train": None, "eval": "rag_retrieval.eval.__main__:main", "rerank": "rag_retrieval.infer.__main__:main",
            "validate": "rag_retrieval.data.tools:validate_main", "split": "rag_retrieval.data.tools:split_main", "convert": "rag_retrieval.data.tools:convert_main",
            "mine": "rag_retrieval.data.mining:mine_main"}


def main(argv=None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        sys.exit(f"usage: rag-retrieval {{{'|'.join(COMMANDS)}}} ...  (got {argv[:1] or 'nothing'})")
    command, rest = argv[0], argv[1:]
    if command == "train":
        from . import kinds

        if not rest:
            sys.exit(f"usage: rag-retrieval train <kind> --config FILE [key=value ...]; kinds: {', '.join(kinds.names())}")
        try:
            kind = kinds.get(rest[0])
        except kinds.ConfigError as err:
            sys.exit(f"error: {err}")
        from .train.run import run_main

        sys.argv = [sys.argv[0], *rest[1:]]
        run_main(importlib.import_module(kind.entry).main)
        return
    module, function = COMMANDS[command].split(":")
    result = getattr(importlib.import_module(module), function)(rest)
    sys.exit(result if isinstance(result, int) else 0)


if __name__ == "__main__":
    main()
