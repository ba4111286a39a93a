"""Train a PE-Rank listwise reranker (passage embeddings as LLM tokens), one stage per run.

    Stage 1, alignment (loss.name=align): only the projector learns, so the LLM can read a passage
    back from its one embedding token.
    Stage 2, learning to rank (loss.name=listmle+contextual_listmle+kl): ListMLE over the decoding
    steps of the target permutation, the same with the passages' text in the prompt, and a KL term
    between the two; the LLM (full or LoRA) and the projector learn. ``model.model_name_or_path``
    then names the stage-1 output.

    torchrun --nproc_per_node N -m rag_retrieval.train.pe_rank --config configs/pe_rank/x.yaml key=value ...
"""

from __future__ import annotations

from ..config import load_config
from ..data import PERankCollator, build_grouped_dataset
from ..losses import PERankLoss
from ..models import PERank
from .args import RetrievalTrainingArguments
from .preflight import preflight
from .run import init_run, run_main, train_and_report
from .trainer import RetrievalTrainer


def main(argv=None, kind: str = "pe_rank") -> dict:
    cfg = load_config(argv, kind, RetrievalTrainingArguments)
    ready = preflight(cfg)  # every check that needs no weights, and the data
    init_run(cfg)

    objectives = cfg.loss.name.split("+")
    model = PERank.from_args(cfg.model, cfg.data, objectives)  # stage 1 freezes the LLM
    dataset = build_grouped_dataset(ready.examples, cfg.data, cfg.train)
    loss = PERankLoss(objectives, {"kl": cfg.loss.kl_weight, **(cfg.loss.weights or {})})
    trainer = RetrievalTrainer(model=model, args=cfg.train, train_dataset=dataset,
                               data_collator=PERankCollator(seed=cfg.train.seed), loss_fn=loss, evaluator=ready.evaluator)
    return train_and_report(cfg, trainer, model, ready)


if __name__ == "__main__":
    run_main(main)
