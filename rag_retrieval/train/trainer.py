"""RetrievalTrainer: ``transformers.Trainer`` with the least overridden.

Launching, DeepSpeed/FSDP, mixed precision, gradient accumulation, checkpoints, resume and
logging are the Trainer's. We change: how the loss is computed (model -> tensors -> loss_fn),
how the model is written and read back (each model kind owns its on-disk format), evaluation
(ranking metrics from an evaluator), and the sampler (our datasets own the epoch order).
"""

from __future__ import annotations

import logging
import os
from typing import Callable, Optional

import torch
from transformers import Trainer

from .progress import readable_logs

logger = logging.getLogger(__name__)


class EpochSampler(torch.utils.data.Sampler):
    """Sequential indices; ``set_epoch`` is forwarded to the dataset, which reorders itself.

    The Trainer (through accelerate) calls ``set_epoch`` on the sampler before each epoch, also
    when resuming, so the dataset's shuffle and group sampling depend on (seed, epoch) only.
    """

    def __init__(self, dataset):
        self.dataset = dataset

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)

    def __iter__(self):
        return iter(range(len(self.dataset)))

    def __len__(self) -> int:
        return len(self.dataset)


class RetrievalTrainer(Trainer):
    """Trainer for every model kind of rag-retrieval.

    Args:
        loss_fn: ``loss_fn(**model_outputs, **batch["targets"])`` -> scalar, or a dict of named
            parts that are summed (and logged as ``loss/<name>``).
        evaluator: callable ``evaluator(model) -> {metric: value}``; used by ``evaluate`` (every
            ``eval_steps`` with ``eval_strategy: steps``, and for ``load_best_model_at_end``).
        All other arguments are ``transformers.Trainer``'s.

    Batches are ``{"features": model inputs, "targets": loss-only inputs}`` (see the collators).
    The model must offer ``save_pretrained(dir, state_dict=None)`` and ``load_weights(dir)``.
    """

    def __init__(self, *args, loss_fn: Callable, evaluator: Optional[Callable] = None, **kwargs):
        placeholder = evaluator is not None and kwargs.get("eval_dataset") is None
        if placeholder:  # the Trainer insists on an eval_dataset when eval_strategy != "no"; ours is the evaluator
            kwargs["eval_dataset"] = "evaluator"
        super().__init__(*args, **kwargs)
        if placeholder:
            self.eval_dataset = None
        self.loss_fn = loss_fn
        self.evaluator = evaluator
        self._loss_parts: dict = {}
        readable_logs(self)
        ds = getattr(self.args, "hf_deepspeed_config", None)
        if getattr(self.args, "head_learning_rate", None) is not None and ds is not None and "optimizer" in ds.config:
            logger.warning("train.head_learning_rate is not applied: the DeepSpeed config defines its own optimizer "
                           "(remove its 'optimizer' section to use the Trainer's, which applies it)")

    # ---- loss ------------------------------------------------------------------------------
    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None, **kwargs):
        outputs = model(**inputs["features"])
        loss = self.loss_fn(**outputs, **inputs.get("targets", {}))
        parts = loss if isinstance(loss, dict) else {}
        if parts:
            loss = sum(parts.values())
        if model.training and not self._all_finite(loss):
            loss = self._nonfinite(model, loss, parts)
        else:
            for name, value in parts.items():
                self._loss_parts[name] = self._loss_parts.get(name, 0.0) + value.detach().float().item()
        return (loss, outputs) if return_outputs else loss

    def _all_finite(self, loss) -> bool:
        """Whether every process's loss is finite: all processes then stop, or skip, together (one
        process leaving alone would hang the others in the next all-reduce)."""
        finite = torch.isfinite(loss.detach()).all()
        if self.args.world_size > 1 and torch.distributed.is_initialized():
            flag = (~finite).float().reshape(1)
            torch.distributed.all_reduce(flag)
            return bool(flag.item() == 0)
        return bool(finite)

    def _nonfinite(self, model, loss, parts: dict):
        """A NaN/inf training loss: stop with a clear error, or (``train.nonfinite_loss: skip``) give
        the batch a zero loss that reaches every trainable weight, so it adds no gradient."""
        detail = ", ".join(f"{k}={v.detach().float().item():.4g}" for k, v in parts.items()) or \
            f"loss={loss.detach().float().item()}"
        step = self.state.global_step + 1
        if getattr(self.args, "nonfinite_loss", "stop") == "stop":
            raise FloatingPointError(
                f"non-finite training loss at step {step} ({detail}); checkpoints so far are kept. Lower "
                f"train.learning_rate, check the data and scores, or set train.nonfinite_loss=skip to drop such batches")
        self._skipped = getattr(self, "_skipped", 0) + 1
        logger.warning("non-finite training loss at step %d (%s): batch skipped (%d so far)", step, detail,
                       self._skipped)
        return sum((p * 0.0).sum() for p in model.parameters() if p.requires_grad)

    def log(self, logs: dict, start_time: Optional[float] = None) -> None:
        if getattr(self, "_skipped", 0) and "loss" in logs:
            logs["skipped_batches"] = self._skipped
        if self._loss_parts and "loss" in logs:
            steps = max(1, self.state.global_step - getattr(self, "_parts_logged_at", 0))
            n = steps * self.args.gradient_accumulation_steps
            logs.update({f"loss/{k}": round(v / n, 6) for k, v in self._loss_parts.items()})
            self._loss_parts = {}
            self._parts_logged_at = self.state.global_step
        super().log(logs, start_time)

    # ---- optimiser -------------------------------------------------------------------------
    def create_optimizer(self, model=None):
        """The Trainer's optimiser; with ``train.head_learning_rate``, new weights get their own rate.

        Under DeepSpeed this optimiser is the one DeepSpeed wraps, as long as the DeepSpeed config
        defines no ``optimizer`` of its own (the shipped ones do not; with one, a warning says the
        head rate is not applied)."""
        optimizer = super().create_optimizer(model)
        head_lr = getattr(self.args, "head_learning_rate", None)
        if head_lr is None:
            return optimizer
        opt_model = self.model if model is None else model
        modules = getattr(self.accelerator.unwrap_model(opt_model), "new_modules", ())
        head = {id(p) for n, p in opt_model.named_parameters() if any(f".{m}." in f".{n}" for m in modules)}
        if not head:
            logger.info("train.head_learning_rate ignored: the checkpoint held every weight (no new head)")
            return optimizer
        for group in list(optimizer.param_groups):  # no state yet: move the new weights to groups of their own
            moved = [p for p in group["params"] if id(p) in head]
            if moved:
                group["params"] = [p for p in group["params"] if id(p) not in head]
                optimizer.add_param_group({**{k: v for k, v in group.items() if k != "params"}, "params": moved,
                                           "lr": head_lr})
        optimizer.param_groups[:] = [g for g in optimizer.param_groups if g["params"]]
        logger.info("learning rate %s for the new weights of %s", head_lr, ", ".join(modules))
        return optimizer

    # ---- data order ------------------------------------------------------------------------
    def _get_train_sampler(self, train_dataset=None):
        return EpochSampler(train_dataset if train_dataset is not None else self.train_dataset)

    def parallelism(self) -> str:
        """How this run is spread, for the log: processes and DDP / FSDP (wrapped layer classes) / ZeRO stage."""
        n = self.args.world_size
        if self.is_deepspeed_enabled:
            stage = self.accelerator.state.deepspeed_plugin.zero_stage
            return f"{n} process(es), DeepSpeed ZeRO-{stage}"
        if self.is_fsdp_enabled:
            layers = ", ".join(getattr(self.model, "_no_split_modules", None) or []) or "none"
            return f"{n} process(es), FSDP (auto-wrap candidates: {layers})"
        return f"{n} process(es), DDP" if n > 1 else "1 process"

    # ---- saving and loading ----------------------------------------------------------------
    def _save(self, output_dir: Optional[str] = None, state_dict=None) -> None:
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        if not self.args.should_save:
            return
        os.makedirs(output_dir, exist_ok=True)
        model = self.accelerator.unwrap_model(self.model, keep_torch_compile=False)
        model.save_pretrained(output_dir, state_dict=state_dict)
        torch.save(self.args, os.path.join(output_dir, "training_args.bin"))

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        if self.is_deepspeed_enabled or self.is_fsdp_enabled:
            return super()._load_from_checkpoint(resume_from_checkpoint, model)
        logger.info("loading model weights from %s", resume_from_checkpoint)
        (model or self.model).load_weights(resume_from_checkpoint)

    def _load_best_model(self) -> None:
        if self.is_deepspeed_enabled or self.is_fsdp_enabled:
            return super()._load_best_model()
        logger.info("loading best model from %s (score %s)", self.state.best_model_checkpoint, self.state.best_metric)
        self.model.load_weights(self.state.best_model_checkpoint)

    # ---- evaluation ------------------------------------------------------------------------
    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict:
        if self.evaluator is None:
            return super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)
        model = self.accelerator.unwrap_model(self.model)
        metrics = {f"{metric_key_prefix}_{k}": v for k, v in self.evaluator(model).items()}
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics
