"""``python -m rag_retrieval.eval``: the same as ``rag-retrieval eval`` (see rag_retrieval.cli.evaluate)."""

from ..cli.evaluate import load_model, main  # noqa: F401  (the command's names, also importable from here)

if __name__ == "__main__":
    from ..errors import run_command

    run_command(main)
