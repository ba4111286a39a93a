"""The run every kind's main() shares, by phase: set up, train and report, shut down."""

from __future__ import annotations

import logging
import os
from typing import Optional

from transformers import TrainerCallback

from ..errors import run_command
from ..eval.evaluators import dump_metrics, format_table
from ..eval.significance import compare, format_comparisons, headline, worst_regressions
from ..utils.dist import finish
from .card import write_card
from .hub import push_to_hub

logger = logging.getLogger(__name__)


def init_run(cfg) -> None:
    """Seeding, DeepSpeed's communicator, and the resolved config in output_dir (created here,
    after preflight passed)."""
    from transformers import set_seed

    if cfg.train.deepspeed and cfg.train.world_size > 1:
        # ZeRO-3 partitions weights while from_pretrained loads them (zero.Init): DeepSpeed's own
        # communicator must know the world by then, or it sizes the batch for one process
        import deepspeed

        deepspeed.init_distributed()
    set_seed(cfg.train.seed)
    if cfg.train.process_index == 0:
        cfg.save()


def train_and_report(cfg, trainer, model, ready) -> dict:
    """Evaluate before (fresh runs), train, save the final model, evaluate after, print the table."""
    results: dict = {}
    per_query: dict = {}  # label -> ({metric: [values]}, {metric: [query texts]}), for the paired comparison
    if cfg.eval.before_training and ready.resume is None:
        evaluate_model(ready.evaluator, model, "before", results, per_query)
        if "before" in results:
            trainer.add_callback(_LogAtStart(trainer, results["before"]))  # step 0 of the curves
    logger.info("training on %s", trainer.parallelism())
    output = trainer.train(resume_from_checkpoint=ready.resume)
    if cfg.model.use_lora and cfg.model.merge_lora:
        if cfg.train.should_save:
            model.save_pretrained(cfg.train.output_dir, merge_lora=True)
    else:
        trainer.save_model(cfg.train.output_dir)
    evaluate_model(ready.evaluator, model, "after", results, per_query, trainer)
    comparisons = report(results, cfg, per_query)
    if cfg.train.process_index == 0:
        examples = len(trainer.train_dataset) if hasattr(trainer.train_dataset, "__len__") else None
        write_card(cfg, results, {"global_step": output.global_step, **(output.metrics or {})}, examples, comparisons)
        push_to_hub(cfg, output.global_step)
    shutdown(cfg)
    return results


def evaluate_model(evaluator, model, label: str, results: dict, per_query: Optional[dict] = None,
                   trainer=None) -> None:
    """Evaluate ``model`` into ``results[label]`` (and its per-query metrics into ``per_query[label]``;
    every process runs it: ZeRO-3 needs all ranks). With ``trainer``, the metrics are logged as
    ``eval/<metric>`` at the current step, so TensorBoard and wandb draw them as curves beside the
    loss (the evaluation before training is logged at step 0 when training starts: the reporters'
    writers open then)."""
    if evaluator is not None:
        logger.info("evaluating the model %s training: %s ...", label, evaluator.describe())
        results[label], values, texts = evaluator.evaluate(model)
        if trainer is not None:
            trainer.log(as_eval_logs(results[label]))
        if per_query is not None:
            per_query[label] = (values, texts)


def as_eval_logs(metrics: dict) -> dict:
    """Metrics as Trainer logs: ``eval_`` keys, which TensorBoard shows as ``eval/<metric>``."""
    return {f"eval_{k}": v for k, v in metrics.items()}


class _LogAtStart(TrainerCallback):
    """Log the evaluation before training once the reporters (TensorBoard, wandb) are set up."""

    def __init__(self, trainer, metrics: dict):
        self.trainer, self.metrics = trainer, metrics

    def on_train_begin(self, args, state, control, **kwargs):
        if self.metrics is not None:
            metrics, self.metrics = self.metrics, None
            self.trainer.log(as_eval_logs(metrics))


def report(results: dict, cfg, per_query: Optional[dict] = None) -> Optional[list]:
    """Print the before/after table and write ``metrics.json`` (main process); with both, the paired
    comparison of after against before (delta, 95% interval, p-value per metric) in ``significance.json``."""
    if not results or cfg.train.process_index != 0:
        return None
    print("\n" + format_table(results) + "\n", flush=True)
    dump_metrics(os.path.join(cfg.train.output_dir, "metrics.json"), results)
    if per_query and {"before", "after"} <= set(per_query):
        (before, texts), (after, _) = per_query["before"], per_query["after"]
        rows = [{"baseline": "before", "model": "after", **row} for row in compare(before, after)]
        main_metric = headline(list(before))
        worst = worst_regressions(texts[main_metric], before[main_metric], after[main_metric])
        print(format_comparisons(rows) + "\n", flush=True)
        dump_metrics(os.path.join(cfg.train.output_dir, "significance.json"),
                     {"models": ["before", "after"], "comparisons": rows, "worst_regressions": worst})
        return rows
    return None


def shutdown(cfg) -> None:
    """Finish wandb, then end the process group (see rag_retrieval.utils.dist.finish)."""
    if "wandb" in (cfg.train.report_to or []):
        try:
            import wandb

            wandb.finish()
        except ImportError:
            pass
    finish(exit_process=cfg.train.world_size > 1)


def run_main(main) -> None:
    """``python -m rag_retrieval.train.<kind>``: a user's mistake is one ``error:`` line, no traceback
    (``--debug`` or ``RAG_RETRIEVAL_DEBUG=1`` shows it; see rag_retrieval.errors.run_command)."""
    run_command(main)
