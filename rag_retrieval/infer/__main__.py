"""``python -m rag_retrieval.infer``: the same as ``rag-retrieval rerank`` (see rag_retrieval.cli.rerank)."""

from ..cli.rerank import main, read_queries  # noqa: F401  (the command's names, also importable from here)

if __name__ == "__main__":
    from ..errors import run_command

    run_command(main)
