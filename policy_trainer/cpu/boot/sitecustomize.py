"""Python loads this at start-up in every process of a CPU-mode run: the launcher puts this directory on
``PYTHONPATH`` of that run only, and sets ``UNIFIREWARD_CPU_MODE=1``.

Every process means Ray's workers and the processes they spawn, such as vLLM's engine core (vLLM always
spawns it inside a Ray actor), which no Ray hook reaches. See :mod:`policy_trainer.cpu.adaptations`.
"""

import os

if os.environ.get("UNIFIREWARD_CPU_MODE") == "1":
    from policy_trainer.cpu.adaptations import apply

    apply()
