"""Trainers: one RetrievalTrainer, one entry point per model kind (python -m rag_retrieval.train.<kind>)."""
