"""Steps every kind's main() shares: run set-up, before/after evaluation, clean shutdown."""

from __future__ import annotations

import logging
import os

from ..eval.evaluators import dump_metrics, format_table
from ..utils.dist import finish


def init_run(cfg) -> None:
    """Logging, seeding, run-safety checks and the resolved config in output_dir."""
    from transformers import set_seed

    from .args import check_output_dir

    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO
                        if cfg.train.process_index == 0 else logging.WARNING)
    check_output_dir(cfg.train)
    set_seed(cfg.train.seed)
    if cfg.train.process_index == 0:
        cfg.save()


def evaluate_model(evaluator, model, label: str, results: dict) -> None:
    """Evaluate ``model`` into ``results[label]`` (every process runs it: ZeRO-3 needs all ranks)."""
    if evaluator is not None:
        results[label] = evaluator(model)


def report(results: dict, cfg) -> None:
    """Print the before/after table and write ``metrics.json`` (main process)."""
    if not results or cfg.train.process_index != 0:
        return
    print("\n" + format_table(results) + "\n", flush=True)
    dump_metrics(os.path.join(cfg.train.output_dir, "metrics.json"), results)


def shutdown(cfg) -> None:
    """Finish wandb, then end the process group (see rag_retrieval.utils.dist.finish)."""
    if "wandb" in (cfg.train.report_to or []):
        try:
            import wandb

            wandb.finish()
        except ImportError:
            pass
    finish(exit_process=cfg.train.world_size > 1)
