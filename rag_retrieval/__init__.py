"""rag-retrieval: fine-tune, distil, evaluate and serve the retrieval models of a RAG system."""

__version__ = "0.1.0"
