"""Models score with the same code in training and inference."""

from .bi_encoder import BiEncoder
from .colbert import ColBERT
from .cross_encoder import CrossEncoder
from .hub import resolve_model_path
from .llm_reranker import LLMReranker
from .pe_rank import PERank

__all__ = ["BiEncoder", "ColBERT", "CrossEncoder", "LLMReranker", "PERank", "resolve_model_path"]
