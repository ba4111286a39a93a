"""Data: one internal Example, JSONL readers with file:line errors, grouped datasets, collators."""

from .collators import ColBERTCollator, EmbeddingCollator, PairCollator, PERankCollator
from .datasets import GroupedDataset, build_grouped_dataset
from .io import FORMATS, DataError, Example, load_examples, scan, validate_record

__all__ = ["ColBERTCollator", "DataError", "EmbeddingCollator", "PairCollator", "PERankCollator", "Example", "FORMATS", "GroupedDataset", "build_grouped_dataset",
           "load_examples", "scan", "validate_record"]
