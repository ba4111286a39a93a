"""Ranking metrics (pure functions) and evaluators; ``python -m rag_retrieval.eval`` prints a table."""

from .evaluators import EvaluatorGroup, RerankEvaluator, RetrievalEvaluator, build_evaluator, format_table
from .metrics import average_precision, mrr_at_k, ndcg_at_k, query_metrics, recall_at_k

__all__ = ["EvaluatorGroup", "RerankEvaluator", "RetrievalEvaluator", "average_precision", "build_evaluator",
           "format_table", "mrr_at_k", "ndcg_at_k", "query_metrics", "recall_at_k"]
