"""Device and autocast choices shared by serving, evaluation and the data tools."""

from __future__ import annotations

from typing import Optional, Sequence, Union

import torch

AUTOCAST_DTYPES = {None: None, "fp32": None, "float32": None, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
                   "fp16": torch.float16, "float16": torch.float16}


def pick_device(device: Optional[str]) -> torch.device:
    """``device``, else the GPU when there is one, else the CPU."""
    return torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))


def pick_devices(device: Union[None, str, Sequence[str]]) -> list:
    """One device or several: a list (``["cuda:0", "cuda:1"]``), a comma-separated string
    (``"cuda:0,cuda:1"``), ``"cuda:all"`` (every visible GPU), or one name / None as in
    :func:`pick_device`. All of one type.

    >>> pick_devices("cpu,cpu")
    [device(type='cpu'), device(type='cpu')]
    """
    if device == "cuda:all":
        if not torch.cuda.is_available():
            raise ValueError("device='cuda:all' but no GPU is visible")
        return [torch.device(f"cuda:{i}") for i in range(torch.cuda.device_count())]
    if isinstance(device, str) and "," in device:
        device = [d.strip() for d in device.split(",") if d.strip()]
    if device is None or isinstance(device, str):
        return [pick_device(device)]
    devices = [pick_device(d) for d in device]
    if not devices or len({d.type for d in devices}) > 1:
        raise ValueError(f"device={device!r}: give one device or several of one type (e.g. cuda:0,cuda:1)")
    return devices


def autocast_dtype(dtype: Optional[str], device: torch.device):
    """The autocast dtype for ``dtype`` on ``device`` (None: fp32, no autocast).

    None is bf16 on a GPU and fp32 on CPU; ``auto`` is bf16 where it is fast (a bf16 GPU, or a CPU
    with bf16 matrix units), else fp32.

    >>> autocast_dtype("bf16", torch.device("cpu"))
    torch.bfloat16
    >>> autocast_dtype(None, torch.device("cpu")) is None
    True
    """
    if dtype == "auto":
        dtype = "bf16" if bf16_supported(use_cpu=device.type == "cpu") else None
    if dtype not in AUTOCAST_DTYPES:
        raise ValueError(f"dtype='{dtype}' is not valid; choose one of: auto, fp32, bf16, fp16")
    if dtype is None and device.type == "cuda":
        return torch.bfloat16
    return AUTOCAST_DTYPES[dtype]


def bf16_supported(use_cpu: bool) -> bool:
    """Whether bf16 autocast speeds work up here (``train.bf16: auto``, ``dtype="auto"``).

    On a GPU: bf16 support (Ampere and newer). On CPU: bf16 matrix instructions (``avx512_bf16`` or
    AMX), which make bf16 matmuls several times faster than fp32; without them bf16 runs emulated,
    many times slower than fp32.

    >>> isinstance(bf16_supported(use_cpu=True), bool)
    True
    """
    if not use_cpu and torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags
