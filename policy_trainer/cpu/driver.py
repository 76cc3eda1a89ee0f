"""The CPU mode's driver: OpenRLHF's ``train_ppo_ray`` as written, after the CPU adaptations.

``python -m policy_trainer.cpu.driver <OpenRLHF flags>`` checks the releases, adapts this process
(:func:`~policy_trainer.cpu.adaptations.apply`), connects to the Ray cluster at ``$RAY_ADDRESS`` with a
runtime environment that adapts every worker of the job the same way, and runs
``openrlhf.cli.train_ppo_ray``'s ``__main__`` block with these flags. OpenRLHF's ``train`` sees Ray
initialised and keeps this environment. The launcher (:mod:`policy_trainer.local_run`) starts it.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
from collections.abc import Sequence

from policy_trainer.cpu.adaptations import apply, check_versions

#: Variables of the driver's environment every worker of the job gets too.
WORKER_VARS_VAR = "UNIFIREWARD_WORKER_ENV"


def worker_env() -> dict[str, str]:
    """The job's environment variables: those the launcher listed in ``$UNIFIREWARD_WORKER_ENV`` (JSON)."""
    listed = json.loads(os.environ.get(WORKER_VARS_VAR, "{}"))
    if not isinstance(listed, dict):
        raise ValueError(f"{WORKER_VARS_VAR} must be a JSON object of variables")
    return {str(k): str(v) for k, v in listed.items()}


def main(argv: Sequence[str]) -> None:
    """Run OpenRLHF's GRPO trainer with ``argv`` on the CPU."""
    check_versions()
    apply()
    import ray

    ray.init(
        address=os.environ.get("RAY_ADDRESS", "auto"),
        runtime_env={"env_vars": worker_env()},
        log_to_driver=True,
    )
    sys.argv = ["openrlhf.cli.train_ppo_ray", *argv]
    try:
        runpy.run_module("openrlhf.cli.train_ppo_ray", run_name="__main__", alter_sys=True)
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main(sys.argv[1:])
