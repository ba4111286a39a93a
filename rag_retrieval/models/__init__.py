"""Models score with the same code in training and inference."""

from .bi_encoder import BiEncoder
from .hub import resolve_model_path

__all__ = ["BiEncoder", "resolve_model_path"]
