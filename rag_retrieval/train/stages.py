"""The first stage of a two-stage reranker recipe: the embedding model the reranker starts from.

    python -m rag_retrieval.train.stages PLAN_FILE --config RERANKER.yaml [section.key=value ...]

The reranker config's ``model.model_name_or_path`` names the folder stage 1 trains (the CPU recipe's
says ``${train.output_dir}/stage1_embedding``, so each run keeps its stage-1 model inside its own
folder). This writes to PLAN_FILE the overrides of the embedding run that fills that folder, one per line: its
output folder and the reranker's data and evaluation keys (the same training file, label
conventions and dev split), plus ``train.resume_from_checkpoint=last`` when a killed stage 1 left a
checkpoint. It writes none when the folder already holds an embedding model trained on the same
files (stage 1 is reused), and fails, naming both files, when that model was trained on other data.
Nothing is loaded or written here; ``recipes/train_reranker.sh`` runs the two stages.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Optional, Sequence

import yaml

from ..config import load_config
from ..config.loader import CONFIG_FILE
from ..errors import ConfigError, run_command
from .args import RetrievalTrainingArguments
from .preflight import check_output_dir, holds_finished_model, last_complete_checkpoint

# the keys that say which data stage 1 learns and is measured on; the rest of its config is the
# embedding recipe's own (lengths, batch, steps)
DATA_KEYS = ("train_path", "format", "columns", "label_range", "skip_bad_lines")
EVAL_KEYS = ("rerank_path", "format", "columns", "label_range", "beir_path", "beir_split", "corpus_path",
             "queries_path", "max_queries", "k_values")


def stage_one_overrides(argv: Sequence[str]) -> list:
    """The embedding run's ``key=value`` overrides, or ``[]`` when its model is already there.

    Raises:
        ConfigError: the reranker config is invalid, or the stage-1 folder holds a model trained on
            other data than the reranker's.
        FileExistsError: the reranker's output_dir already holds a finished model (and neither
            overwrite nor resume is asked for).
    """
    cfg = load_config(argv, "reranker", RetrievalTrainingArguments)
    check_output_dir(cfg.train)  # stage 2 would refuse a finished output_dir: say so before stage 1 runs
    folder = cfg.model.model_name_or_path
    wanted = {f"data.{key}": getattr(cfg.data, key) for key in DATA_KEYS}
    wanted.update({f"eval.{key}": getattr(cfg.eval, key) for key in EVAL_KEYS})
    if holds_finished_model(folder):
        trained_on = _trained_on(folder)
        if trained_on is not None and trained_on != wanted["data.train_path"]:
            raise ConfigError(
                f"model.model_name_or_path={folder} holds a stage-1 embedding model trained on {trained_on}, "
                f"not on data.train_path={wanted['data.train_path']}; give model.model_name_or_path=<a new "
                f"folder> (stage 1 trains it) or train.output_dir=<a new folder>")
        print(f"stage 1: reusing the embedding model in {folder}", file=sys.stderr)
        return []
    overrides = [f"train.output_dir={_yaml_value(folder)}"]
    overrides += [f"{key}={_yaml_value(value)}" for key, value in wanted.items() if value is not None]
    if last_complete_checkpoint(folder) is not None:
        overrides.append("train.resume_from_checkpoint=last")
    return overrides


def _yaml_value(value) -> str:
    """A value as an override reads it back (JSON is YAML; strings quoted, so "no" stays a string)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _trained_on(folder: str) -> Optional[object]:
    """``data.train_path`` of the run that saved ``folder`` (None when it left no config)."""
    path = os.path.join(folder, CONFIG_FILE)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return ((yaml.safe_load(f) or {}).get("data") or {}).get("train_path")


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-"):
        raise ConfigError("usage: python -m rag_retrieval.train.stages PLAN_FILE --config RERANKER.yaml [key=value ...]")
    overrides = stage_one_overrides(argv[1:])
    with open(argv[0], "w", encoding="utf-8") as f:  # a file, not stdout: libraries print there on import
        f.writelines(line + "\n" for line in overrides)
    return 0


if __name__ == "__main__":
    run_command(main)
