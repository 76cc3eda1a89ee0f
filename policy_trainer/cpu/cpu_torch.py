"""``torch`` as OpenRLHF's training modules see it in the CPU mode (:mod:`policy_trainer.cpu.adaptations`).

Every name is the real ``torch``'s but two: ``cuda``, whose device calls answer for the CPU (the current
device is ``"cpu"``; ``set_device``, ``synchronize``, ``empty_cache`` and ``current_stream`` do nothing),
and ``device``, which reads ``"cuda:..."`` as the CPU. A module of its own, so that Ray, which pickles
OpenRLHF's actor classes with their globals, sends it by name to the workers.

>>> from policy_trainer.cpu import cpu_torch
>>> cpu_torch.device("cuda:0"), cpu_torch.cuda.current_device(), cpu_torch.tensor([1]).device
(device(type='cpu'), 'cpu', device(type='cpu'))
"""

from __future__ import annotations

from typing import Any

import torch as _torch


class _CpuCuda:
    """``torch.cuda`` for the CPU: the calls OpenRLHF makes on its training path."""

    @staticmethod
    def current_device() -> str:
        return "cpu"

    @staticmethod
    def set_device(device: Any) -> None:
        return None

    @staticmethod
    def synchronize(device: Any = None) -> None:
        return None

    @staticmethod
    def empty_cache() -> None:
        return None

    @staticmethod
    def current_stream(device: Any = None) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        return getattr(_torch.cuda, name)


cuda = _CpuCuda()


def device(spec: Any, *args: Any) -> _torch.device:
    """``torch.device``, with any ``cuda`` device read as the CPU."""
    if isinstance(spec, str) and spec.startswith("cuda"):
        return _torch.device("cpu")
    return _torch.device(spec, *args)


def __getattr__(name: str) -> Any:
    return getattr(_torch, name)
