"""Training logs a person reads: one line per logging step, numbers as numbers
(``step 20/340  loss 2.0776  lr 2.00e-04  grad_norm 0.311  epoch 0.04``), in place of the
Trainer's printed dicts of strings."""

from __future__ import annotations

from transformers.trainer_callback import PrinterCallback, ProgressCallback

ORDER = ("loss", "eval_loss", "learning_rate", "grad_norm", "epoch")
SHORT = {"learning_rate": "lr"}


def format_number(value) -> str:
    """
    >>> format_number(0.0002), format_number(2.07763), format_number(12), format_number(0.04008)
    ('2.00e-04', '2.0776', '12', '0.0401')
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if value != 0 and abs(value) < 1e-3:
        return f"{value:.2e}"
    return f"{value:.4f}" if abs(value) < 1e4 else f"{value:.4g}"


def format_logs(logs: dict, step: int, max_steps: int) -> str:
    """One line for a Trainer log dict: the loss and its parts first, then the rest.

    >>> format_logs({"loss": 2.0776, "learning_rate": 2e-4, "loss/bce": 0.5, "epoch": 0.04}, 20, 340)
    'step 20/340  loss 2.0776  loss/bce 0.5000  lr 2.00e-04  epoch 0.0400'
    """
    keys = [k for k in ORDER if k in logs]
    parts = sorted(k for k in logs if k.startswith("loss/"))
    rest = [k for k in logs if k not in keys and k not in parts and k != "total_flos"]
    ordered = keys[:1] + parts + keys[1:] + rest
    fields = [f"{SHORT.get(k, k)} {format_number(logs[k])}" for k in ordered]
    return "  ".join([f"step {step}/{max_steps}"] + fields)


class ReadableProgress(ProgressCallback):
    """The Trainer's progress bar, with :func:`format_logs` lines above it."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and self.training_bar is not None and logs:
            self.training_bar.write(format_logs(logs, state.global_step, state.max_steps))


class ReadablePrinter(PrinterCallback):
    """``disable_tqdm``: the same lines, printed."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_local_process_zero and logs:
            print(format_logs(logs, state.global_step, state.max_steps), flush=True)


def readable_logs(trainer) -> None:
    """Swap the Trainer's log printers for the readable ones (whichever it uses)."""
    for old, new in ((ProgressCallback, ReadableProgress), (PrinterCallback, ReadablePrinter)):
        if trainer.pop_callback(old) is not None:
            trainer.add_callback(new)
