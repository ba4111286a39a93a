"""``python -m rag_retrieval.cli``: the ``rag-retrieval`` command."""

from . import main

main()
