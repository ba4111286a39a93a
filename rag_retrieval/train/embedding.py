"""Fine-tune a bi-encoder (embedding model).

    torchrun --nproc_per_node N -m rag_retrieval.train.embedding --config configs/embedding/x.yaml key=value ...
"""

from __future__ import annotations

from ..config import EMBEDDING_LOSSES, load_config
from ..data import EmbeddingCollator, build_grouped_dataset
from ..losses import build_embedding_loss
from ..models import BiEncoder
from .args import resolve_resume
from .common import init_run, load_data, run_main, train_and_report
from .trainer import RetrievalTrainer


def main(argv=None) -> dict:
    cfg = load_config(argv, loss_choices=EMBEDDING_LOSSES)
    init_run(cfg)
    resume = resolve_resume(cfg.train)
    examples, evaluator = load_data(cfg)  # checked before any model loads

    model = BiEncoder.from_args(cfg.model, cfg.data, matryoshka_dims=cfg.loss.matryoshka_dims)
    dataset = build_grouped_dataset(examples, cfg.data, cfg.train)
    collator = EmbeddingCollator(model.tokenizer, cfg.data.query_max_len, cfg.data.passage_max_len,
                                 model.query_instruction, model.passage_instruction)
    trainer = RetrievalTrainer(model=model, args=cfg.train, train_dataset=dataset, data_collator=collator,
                               loss_fn=build_embedding_loss(cfg.loss, normalize=model.normalize), evaluator=evaluator)
    return train_and_report(cfg, trainer, model, evaluator, resume)


if __name__ == "__main__":
    run_main(main)
