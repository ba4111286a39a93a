"""Fine-tune a bi-encoder (embedding model).

    torchrun --nproc_per_node N -m rag_retrieval.train.embedding --config configs/embedding/x.yaml key=value ...
"""

from __future__ import annotations

from ..config import load_config
from ..data import EmbeddingCollator, build_grouped_dataset
from ..losses import build_embedding_loss
from ..models import BiEncoder
from .args import RetrievalTrainingArguments
from .preflight import preflight
from .run import init_run, run_main, train_and_report
from .trainer import RetrievalTrainer


def main(argv=None, kind: str = "embedding") -> dict:
    cfg = load_config(argv, kind, RetrievalTrainingArguments)
    ready = preflight(cfg)  # every check that needs no weights, and the data
    init_run(cfg)

    model = BiEncoder.from_args(cfg.model, cfg.data, matryoshka_dims=cfg.loss.matryoshka_dims)
    model.grad_cache_chunk = cfg.train.grad_cache_chunk or 0
    dataset = build_grouped_dataset(ready.examples, cfg.data, cfg.train)
    collator = EmbeddingCollator(model.tokenizer, cfg.data.query_max_len, cfg.data.passage_max_len,
                                 model.query_instruction, model.passage_instruction,
                                 length_buckets=cfg.data.length_buckets)
    loss = build_embedding_loss(cfg.loss, normalize=model.normalize)
    trainer = RetrievalTrainer(model=model, args=cfg.train, train_dataset=dataset, data_collator=collator,
                               loss_fn=loss, evaluator=ready.evaluator)
    return train_and_report(cfg, trainer, model, ready)


if __name__ == "__main__":
    run_main(main)
