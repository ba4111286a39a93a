"""Fine-tune a bi-encoder (embedding model).

    torchrun --nproc_per_node N -m rag_retrieval.train.embedding --config configs/embedding/x.yaml key=value ...
"""

from __future__ import annotations

import sys

from ..config import EMBEDDING_LOSSES, ConfigError, load_config
from ..data import DataError, EmbeddingCollator, build_grouped_dataset, load_examples
from ..eval.evaluators import build_evaluator
from ..losses import build_embedding_loss
from ..models import BiEncoder
from .args import resolve_resume
from .common import evaluate_model, init_run, report, shutdown
from .trainer import RetrievalTrainer


def main(argv=None) -> dict:
    cfg = load_config(argv, loss_choices=EMBEDDING_LOSSES)
    init_run(cfg)
    resume = resolve_resume(cfg.train)

    # data and evaluation files are checked before any model loads
    examples = load_examples(cfg.data.train_files, cfg.data.format, cfg.data.skip_bad_lines, cfg.data.max_examples)
    if cfg.loss.needs_teacher_scores and examples[0]["scores"] is None:
        raise ConfigError(f"loss.name={cfg.loss.name} needs teacher scores (pos_scores/neg_scores) in data.train_path")
    evaluator = build_evaluator(cfg.eval)

    model = BiEncoder.from_args(cfg.model, cfg.data, matryoshka_dims=cfg.loss.matryoshka_dims)
    dataset = build_grouped_dataset(examples, cfg.data, cfg.train)
    collator = EmbeddingCollator(model.tokenizer, cfg.data.query_max_len, cfg.data.passage_max_len,
                                 model.query_instruction, model.passage_instruction)
    loss_fn = build_embedding_loss(cfg.loss, normalize=model.normalize)
    trainer = RetrievalTrainer(model=model, args=cfg.train, train_dataset=dataset, data_collator=collator,
                               loss_fn=loss_fn, evaluator=evaluator)

    results: dict = {}
    if cfg.eval.before_training and resume is None:
        evaluate_model(evaluator, model, "before", results)
    trainer.train(resume_from_checkpoint=resume)
    if cfg.model.use_lora and cfg.model.merge_lora:
        if cfg.train.should_save:
            model.save_pretrained(cfg.train.output_dir, merge_lora=True)
    else:
        trainer.save_model(cfg.train.output_dir)
    evaluate_model(evaluator, model, "after", results)
    report(results, cfg)
    shutdown(cfg)
    return results


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except (ConfigError, DataError, FileExistsError, FileNotFoundError) as err:
        sys.exit(f"error: {err}")
