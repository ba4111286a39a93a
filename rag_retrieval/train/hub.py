"""``train.push_to_hub``: the finished model folder goes up to the Hugging Face Hub in one commit.

The Trainer's own pushing is turned off (``RetrievalTrainingArguments`` keeps the wish as
``push_final``): it would create the repository before training, push checkpoints on every save and
its final push would come before this project's final save (a merged LoRA model is saved around the
Trainer) and before the model card. Here the push comes last, after the final save, the evaluation,
``metrics.json`` and README.md, for every kind: weights, tokenizer, settings and card together.
"""

from __future__ import annotations

import fnmatch
import logging
import os
from typing import Optional

from ..config.loader import CONFIG_FILE
from ..errors import ConfigError
from ..models.hub import offline

logger = logging.getLogger(__name__)
# what a finished folder holds that is not the model: checkpoints (resumable state, optimizer), the
# TensorBoard logs, and files the Hub libraries treat as private
LEFT_OUT = ("checkpoint-*", "runs", "_*", ".*")


def repo_id(train) -> str:
    """``train.hub_model_id``, else the output folder's name (as the Trainer names it)."""
    return train.hub_model_id or os.path.basename(os.path.abspath(train.output_dir))


def check_push(train) -> None:
    """Before anything loads: a push needs the network."""
    if getattr(train, "push_final", False) and offline():
        raise ConfigError("train.push_to_hub=true needs the Hugging Face Hub, but HF_HUB_OFFLINE (or "
                          "TRANSFORMERS_OFFLINE) is set: unset it, or set train.push_to_hub=false and upload the "
                          f"folder later (huggingface-cli upload {repo_id(train)} {train.output_dir})")


def files_to_push(folder: str) -> list:
    """The model's files under ``folder``, relative and sorted: everything but checkpoints, logs,
    hidden files and nested runs (a subfolder holding its own ``rag_retrieval_config.yaml``)."""
    out = []
    for root, dirs, files in os.walk(folder):
        rel_root = os.path.relpath(root, folder)
        dirs[:] = sorted(d for d in dirs if not any(fnmatch.fnmatch(d, p) for p in LEFT_OUT)
                         and not os.path.isfile(os.path.join(root, d, CONFIG_FILE)))
        for name in files:
            if not any(fnmatch.fnmatch(name, p) for p in LEFT_OUT):
                out.append(os.path.normpath(os.path.join(rel_root, name)))
    return sorted(out)


def push_to_hub(cfg, step: Optional[int] = None) -> Optional[str]:
    """Upload ``train.output_dir`` to ``train.hub_model_id`` in one commit (main process, when
    ``train.push_to_hub``); returns the commit's URL. The repository is created when missing
    (``train.hub_private_repo``), ``train.hub_token`` and ``train.hub_revision`` are used."""
    train = cfg.train
    if not getattr(train, "push_final", False) or train.process_index != 0:
        return None
    from huggingface_hub import CommitOperationAdd, HfApi

    folder, repo = train.output_dir, repo_id(train)
    api = HfApi(token=train.hub_token)
    api.create_repo(repo, private=train.hub_private_repo, exist_ok=True, repo_type="model")
    operations = [CommitOperationAdd(path_in_repo=path, path_or_fileobj=os.path.join(folder, path))
                  for path in files_to_push(folder)]
    message = f"rag-retrieval {cfg.kind}" + (f" after {step} steps" if step is not None else "")
    info = api.create_commit(repo, operations, commit_message=message, revision=train.hub_revision)
    logger.info("pushed %d files of %s to %s", len(operations), folder, getattr(info, "commit_url", repo))
    return getattr(info, "commit_url", None)
