"""Fine-tune a ColBERT late-interaction model (token vectors, MaxSim).

    torchrun --nproc_per_node N -m rag_retrieval.train.colbert --config configs/colbert/x.yaml key=value ...
"""

from __future__ import annotations

from ..config import load_config
from ..data import ColBERTCollator, build_grouped_dataset
from ..losses import build_embedding_loss
from ..models import ColBERT
from .args import RetrievalTrainingArguments
from .preflight import preflight
from .run import init_run, run_main, train_and_report
from .trainer import RetrievalTrainer


def main(argv=None, kind: str = "colbert") -> dict:
    cfg = load_config(argv, kind, RetrievalTrainingArguments)
    ready = preflight(cfg)  # every check that needs no weights, and the data
    init_run(cfg)

    model = ColBERT.from_args(cfg.model, cfg.data)
    model.grad_cache_chunk = cfg.train.grad_cache_chunk or 0
    dataset = build_grouped_dataset(ready.examples, cfg.data, cfg.train)
    collator = ColBERTCollator(model.tokenize_queries, model.tokenize_passages)
    loss = build_embedding_loss(cfg.loss, score_fn=model.score_fn, default_temperature=1.0)
    trainer = RetrievalTrainer(model=model, args=cfg.train, train_dataset=dataset, data_collator=collator,
                               loss_fn=loss, evaluator=ready.evaluator)
    return train_and_report(cfg, trainer, model, ready)


if __name__ == "__main__":
    run_main(main)
