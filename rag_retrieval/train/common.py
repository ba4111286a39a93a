"""Steps every kind's main() shares: run set-up, before/after evaluation, clean shutdown."""

from __future__ import annotations

import logging
import os

from ..eval.evaluators import dump_metrics, format_table
from ..utils.dist import finish

logger = logging.getLogger(__name__)


def init_run(cfg) -> None:
    """Logging, seeding, run-safety checks and the resolved config in output_dir."""
    from transformers import set_seed

    from .args import check_output_dir

    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO
                        if cfg.train.process_index == 0 else logging.WARNING)
    check_output_dir(cfg.train)
    check_launcher(cfg)
    if cfg.train.deepspeed and cfg.train.world_size > 1:
        # ZeRO-3 partitions weights while from_pretrained loads them (zero.Init): DeepSpeed's own
        # communicator must know the world by then, or it sizes the batch for one process
        import deepspeed

        deepspeed.init_distributed()
    set_seed(cfg.train.seed)
    if cfg.train.process_index == 0:
        cfg.save()


def check_launcher(cfg) -> None:
    """An accelerate launch that already chose FSDP or a DeepSpeed config must not meet
    ``train.deepspeed`` too (the Trainer would silently prefer the latter, or fail late)."""
    from ..config import ConfigError

    fsdp = os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true"
    launched = os.environ.get("ACCELERATE_DEEPSPEED_CONFIG_FILE")
    if cfg.model.use_lora and cfg.model.merge_lora and (
            fsdp or _zero_stage(cfg.train.deepspeed or launched) == 3):
        raise ConfigError(f"{cfg.source}: model.merge_lora=true with {'FSDP' if fsdp else 'DeepSpeed ZeRO-3'}: the "
                          "weights are sharded when the run saves; set model.merge_lora=false (the adapter is saved "
                          "whole) and merge it after with scripts/merge_lora.py")
    if not cfg.train.deepspeed:
        return
    if fsdp:
        raise ConfigError(f"{cfg.source}: train.deepspeed={cfg.train.deepspeed} under an accelerate FSDP launch: "
                          "choose one (train.deepspeed=null for FSDP)")
    if launched and os.path.abspath(launched) != os.path.abspath(cfg.train.deepspeed):
        raise ConfigError(f"{cfg.source}: train.deepspeed={cfg.train.deepspeed} but the accelerate config launched "
                          f"DeepSpeed with {launched}: choose one (train.deepspeed=null to use the accelerate one)")


def _zero_stage(deepspeed) -> int:
    """The ZeRO stage of a DeepSpeed config (a JSON path or a dict); 0 when there is none."""
    if not deepspeed:
        return 0
    if isinstance(deepspeed, str):
        import json

        with open(deepspeed) as f:
            deepspeed = json.load(f)
    return int((deepspeed.get("zero_optimization") or {}).get("stage", 0))


def check_ranking_setup(cfg, listwise_losses) -> None:
    """Loss and grouping must fit: listwise and pairwise losses need several documents per query."""
    from ..config import ConfigError

    parts = cfg.loss.name.split("+")
    if cfg.data.group_size == 1 and any(p in listwise_losses for p in parts):
        raise ConfigError(f"{cfg.source}: loss.name={cfg.loss.name} compares documents of a query: it needs "
                          f"data.group_size > 1 (got 1); use bce or mse for pointwise training")
    if cfg.data.format == "pointwise" and cfg.data.group_size != 1:
        raise ConfigError(f"{cfg.source}: data.format=pointwise has one document per record: set data.group_size=1 "
                          f"(with loss.name bce or mse), or use the pos_neg / hits formats for groups")


# encoders whose position table has two extra slots for the padding offset
POSITION_OFFSET = {"roberta": 2, "xlm-roberta": 2, "camembert": 2, "longformer": 2, "bart": 2, "mbart": 2}


def check_lengths(cfg) -> None:
    """``data.query_max_len`` / ``passage_max_len`` / ``eval.max_length`` must fit the model's
    position table (read from its config file, before any weight loads). A hub id that cannot be
    reached is left to ``from_pretrained`` to report."""
    from transformers import AutoConfig

    from ..config import ConfigError
    from ..models.hub import resolve_model_path
    from ..models.weights import model_source

    name = cfg.model.model_name_or_path
    try:
        config = AutoConfig.from_pretrained(model_source(resolve_model_path(name)),
                                            trust_remote_code=cfg.model.trust_remote_code)
    except (OSError, ValueError):
        return
    limit = getattr(config, "max_position_embeddings", None)
    if not isinstance(limit, int) or limit <= 0:
        return
    limit -= POSITION_OFFSET.get(config.model_type, 0)
    for key, value in (("data.query_max_len", cfg.data.query_max_len), ("data.passage_max_len", cfg.data.passage_max_len),
                       ("eval.max_length", cfg.eval.max_length)):
        if value is not None and value > limit:
            raise ConfigError(f"{cfg.source}: {key}={value} is beyond the {limit} positions of {name} "
                              f"({type(config).__name__}.max_position_embeddings); set {key} <= {limit}")


def load_data(cfg):
    """Training examples and the evaluator, both checked before any model loads."""
    from ..config import ConfigError
    from ..data import load_examples
    from ..eval.evaluators import build_evaluator

    check_lengths(cfg)
    examples = load_examples(cfg.data.train_files, cfg.data.format, cfg.data.skip_bad_lines, cfg.data.max_examples)
    if cfg.loss.needs_teacher_scores and examples[0]["scores"] is None:
        raise ConfigError(f"loss.name={cfg.loss.name} needs teacher scores (pos_scores/neg_scores) in data.train_path")
    return examples, build_evaluator(cfg.eval)


def train_and_report(cfg, trainer, model, evaluator, resume) -> dict:
    """Evaluate before (fresh runs), train, save the final model, evaluate after, print the table."""
    results: dict = {}
    if cfg.eval.before_training and resume is None:
        evaluate_model(evaluator, model, "before", results)
    logger.info("training on %s", trainer.parallelism())
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


def run_main(main) -> None:
    """``python -m`` entry: clear one-line errors for bad config, data or paths."""
    import sys

    from ..config import ConfigError
    from ..data import DataError

    try:
        main(sys.argv[1:])
    except (ConfigError, DataError, FileExistsError, FileNotFoundError, FloatingPointError) as err:
        sys.exit(f"error: {err}")


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
