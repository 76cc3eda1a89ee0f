"""The CPU mode's SFT driver: OpenRLHF's ``train_sft`` as written, in one process, after the CPU adaptations.

``python -m policy_trainer.cpu.sft_driver <OpenRLHF train_sft flags>`` checks the OpenRLHF release, adapts
this process (:func:`~policy_trainer.cpu.adaptations.apply`: DeepSpeed's strategy calls ``torch.cuda`` and
builds its device mesh on ``"cuda"``, ``openrlhf/utils/deepspeed/deepspeed.py:97, 105, 614, 633``, which the
adaptations answer for the CPU; the rendezvous store listens on 127.0.0.1 only), sets the environment of a
single-rank ``torch.distributed`` job (what DeepSpeed's launcher sets on a GPU node: ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, a free ``MASTER_PORT``) and runs
``openrlhf.cli.train_sft``'s ``__main__`` block with these flags. DeepSpeed then runs on its CPU
accelerator over gloo. :func:`policy_trainer.judge_sft.run_local_sft` submits it as a Ray job.

SFT needs neither vLLM nor Ray inside the run, so only the OpenRLHF release is checked.
"""

from __future__ import annotations

import os
import runpy
import sys
from collections.abc import Sequence

from policy_trainer.cpu.adaptations import apply
from policy_trainer.judge_sft import SFT_MODULE, LocalSFTError, check_openrlhf


def single_rank_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The variables of a one-process ``torch.distributed`` job on loopback, those already set kept.

    >>> env = single_rank_env({"MASTER_PORT": "29555"})
    >>> env["RANK"], env["WORLD_SIZE"], env["LOCAL_RANK"], env["MASTER_ADDR"], env["MASTER_PORT"]
    ('0', '1', '0', '127.0.0.1', '29555')
    """
    from services.tools.processes import free_port

    environ = dict(os.environ if environ is None else environ)
    wanted = {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1"}
    env = {name: environ.get(name, value) for name, value in wanted.items()}
    if env["WORLD_SIZE"] != "1":
        raise LocalSFTError(f"the CPU SFT driver runs one rank; WORLD_SIZE is {env['WORLD_SIZE']}")
    env["MASTER_PORT"] = environ.get("MASTER_PORT") or str(free_port())
    return env


def main(argv: Sequence[str]) -> None:
    """Run OpenRLHF's SFT trainer with ``argv`` on the CPU, in this process."""
    check_openrlhf()
    apply()
    os.environ.update(single_rank_env())
    sys.argv = [SFT_MODULE, *argv]
    runpy.run_module(SFT_MODULE, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
