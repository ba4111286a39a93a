"""rag-retrieval: fine-tune, distil, evaluate and serve the retrieval models of a RAG system."""

__version__ = "0.1.0"


def __getattr__(name):  # lazy: importing the package stays cheap (no torch/transformers until used)
    if name in ("Reranker", "Embedder", "BaseRanker", "RankedResults"):
        from . import infer

        return getattr(infer, name)
    raise AttributeError(f"module 'rag_retrieval' has no attribute '{name}'")


__all__ = ["BaseRanker", "Embedder", "RankedResults", "Reranker", "__version__"]
