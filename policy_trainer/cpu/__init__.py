"""The CPU mode of the GRPO trainer (``unifireward train --local``): OpenRLHF 0.11.2 adapted to run without a GPU.

:mod:`~policy_trainer.cpu.adaptations` holds every adaptation; :mod:`~policy_trainer.cpu.driver` runs
OpenRLHF's trainer after them; ``boot/sitecustomize.py`` applies them in every process of a run; ``stubs/``
stands in for flash-attn.
"""
