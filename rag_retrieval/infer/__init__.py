"""Inference: one ``Reranker`` for every ranking model, an ``Embedder`` for bi-encoders."""

from .base import BaseRanker, RankedDoc, RankedResults, token_windows
from .embedder import Embedder
from .rankers import (MODEL_TYPES, ColBERTRanker, CrossEncoderRanker, LayerwiseLLMRanker, LLMRanker, PERankRanker,
                      Reranker, detect_model_type)

__all__ = ["BaseRanker", "ColBERTRanker", "CrossEncoderRanker", "Embedder", "LLMRanker", "LayerwiseLLMRanker", "MODEL_TYPES", "PERankRanker",
           "RankedDoc", "RankedResults", "Reranker", "detect_model_type", "token_windows"]
