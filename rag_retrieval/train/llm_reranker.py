"""Fine-tune a decoder-only LLM reranker (yes-token logit or score head; layerwise; LoRA or full).

    torchrun --nproc_per_node N -m rag_retrieval.train.llm_reranker --config configs/llm_reranker/x.yaml key=value ...
"""

from __future__ import annotations

from ..config import RANKING_LOSSES, load_config
from ..data import PairCollator, build_grouped_dataset
from ..losses import LISTWISE, LayerwiseLoss, build_ranking_loss
from ..models import LLMReranker
from .args import resolve_resume
from .common import check_ranking_setup, init_run, load_data, run_main, train_and_report
from .trainer import RetrievalTrainer


def main(argv=None) -> dict:
    cfg = load_config(argv, loss_choices=RANKING_LOSSES)
    check_ranking_setup(cfg, LISTWISE)
    init_run(cfg)
    resume = resolve_resume(cfg.train)
    examples, evaluator = load_data(cfg)  # checked before any model loads

    model = LLMReranker.from_args(cfg.model, max_length=cfg.data.passage_max_len,
                                  query_max_length=cfg.data.query_max_len)
    dataset = build_grouped_dataset(examples, cfg.data, cfg.train)
    collator = PairCollator(model.tokenize, length_buckets=cfg.data.length_buckets)
    loss = build_ranking_loss(cfg.loss)
    if model.cutoff_layers is not None:  # one score column per cutoff layer, each trained
        loss = LayerwiseLoss(loss, model.cutoff_layers)
    trainer = RetrievalTrainer(model=model, args=cfg.train, train_dataset=dataset, data_collator=collator,
                               loss_fn=loss, evaluator=evaluator)
    return train_and_report(cfg, trainer, model, evaluator, resume)


if __name__ == "__main__":
    run_main(main)
