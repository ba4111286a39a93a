"""torch.distributed helpers that are no-ops in a single process."""

from __future__ import annotations

import contextlib
import os

import torch
import torch.distributed as dist


def world() -> tuple:
    """(rank, world_size); (0, 1) when torch.distributed is not initialised."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def all_gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate ``tensor`` from every process along dim 0, keeping gradients.

    ``torch.distributed.nn.functional.all_gather`` is autograd-aware: the backward pass sums the
    gradients of each gathered copy back onto the process that owns it, so negatives gathered
    from other processes still train the encoder. Shapes must match across processes, except
    dim 1 of tensors with 3 or more dims (token vectors of ColBERT passages), which is zero-padded
    to the longest across processes (zero rows carry a zero mask, so they never count).
    """
    rank, size = world()
    if size == 1:
        return tensor
    from torch.distributed.nn.functional import all_gather

    if tensor.dim() >= 3:
        longest = torch.tensor([tensor.shape[1]], device=tensor.device)
        dist.all_reduce(longest, op=dist.ReduceOp.MAX)
        if longest.item() > tensor.shape[1]:
            pad = [0, 0] * (tensor.dim() - 2) + [0, int(longest.item()) - tensor.shape[1]]
            tensor = torch.nn.functional.pad(tensor, pad)
    return torch.cat(all_gather(tensor.contiguous()), dim=0)  # (world*N, ...)


@contextlib.contextmanager
def root_unsharded(model: torch.nn.Module):
    """Gather the weights an FSDP2 root keeps sharded outside its wrapped layers (a pooler, a
    projection, a head) for code that calls submodules directly, like encoding for evaluation;
    a no-op for any other model. The wrapped layers gather their own weights in their forwards."""
    from torch.distributed.fsdp import FSDPModule

    if not isinstance(model, FSDPModule):
        yield model
        return
    model.unshard()
    try:
        yield model
    finally:
        model.reshard()


def finish(exit_process: bool = False) -> None:
    """End a multi-process run cleanly.

    A barrier before ``destroy_process_group`` stops gloo workers aborting at shutdown; after the
    Trainer, ``os._exit(0)`` skips interpreter teardown, which otherwise aborts some gloo workers
    (torchrun then reports failure for work that finished). Call ``wandb.finish()`` before this.
    """
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
        if exit_process:
            import sys

            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
