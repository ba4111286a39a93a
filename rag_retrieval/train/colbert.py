"""Fine-tune a ColBERT late-interaction model (token vectors, MaxSim).

    torchrun --nproc_per_node N -m rag_retrieval.train.colbert --config configs/colbert/x.yaml key=value ...
"""

from __future__ import annotations

from ..config import EMBEDDING_LOSSES, ConfigError, load_config
from ..data import ColBERTCollator, build_grouped_dataset
from ..losses import build_embedding_loss
from ..models import ColBERT
from .args import resolve_resume
from .common import init_run, load_data, run_main, train_and_report
from .trainer import RetrievalTrainer


def main(argv=None) -> dict:
    cfg = load_config(argv, loss_choices=EMBEDDING_LOSSES)
    if cfg.loss.matryoshka_dims:
        raise ConfigError("loss.matryoshka_dims is for bi-encoders; ColBERT sets its vector size with model.dim")
    init_run(cfg)
    resume = resolve_resume(cfg.train)
    examples, evaluator = load_data(cfg)  # checked before any model loads

    model = ColBERT.from_args(cfg.model, cfg.data)
    dataset = build_grouped_dataset(examples, cfg.data, cfg.train)
    collator = ColBERTCollator(model.tokenize_queries, model.tokenize_passages)
    loss_fn = build_embedding_loss(cfg.loss, score_fn=model.score_fn, default_temperature=1.0)
    trainer = RetrievalTrainer(model=model, args=cfg.train, train_dataset=dataset, data_collator=collator,
                               loss_fn=loss_fn, evaluator=evaluator)
    return train_and_report(cfg, trainer, model, evaluator, resume)


if __name__ == "__main__":
    run_main(main)
