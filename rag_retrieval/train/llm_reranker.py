"""Fine-tune a decoder-only LLM reranker (yes-token logit or score head; layerwise; LoRA or full).

    torchrun --nproc_per_node N -m rag_retrieval.train.llm_reranker --config configs/llm_reranker/x.yaml key=value ...
"""

from __future__ import annotations

from ..config import load_config
from ..data import PairCollator, build_grouped_dataset
from ..losses import LayerwiseLoss, build_ranking_loss
from ..models import LLMReranker
from .args import RetrievalTrainingArguments
from .preflight import preflight
from .run import init_run, run_main, train_and_report
from .trainer import RetrievalTrainer


def main(argv=None, kind: str = "llm_reranker") -> dict:
    cfg = load_config(argv, kind, RetrievalTrainingArguments)
    ready = preflight(cfg)  # every check that needs no weights, and the data
    init_run(cfg)

    model = LLMReranker.from_args(cfg.model, cfg.data)
    dataset = build_grouped_dataset(ready.examples, cfg.data, cfg.train)
    collator = PairCollator(model.tokenize, length_buckets=cfg.data.length_buckets)
    loss = build_ranking_loss(cfg.loss)
    if model.cutoff_layers is not None:  # one score column per cutoff layer, each trained
        loss = LayerwiseLoss(loss, model.cutoff_layers)
    trainer = RetrievalTrainer(model=model, args=cfg.train, train_dataset=dataset, data_collator=collator,
                               loss_fn=loss, evaluator=ready.evaluator)
    return train_and_report(cfg, trainer, model, ready)


if __name__ == "__main__":
    run_main(main)
