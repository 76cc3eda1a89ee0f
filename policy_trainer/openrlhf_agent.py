"""The file OpenRLHF's ``--train.agent_func_path`` names: it only re-exports the agent executor.

OpenRLHF 0.11.2 loads that file by path under the module name ``agent_module`` without registering it,
so a class defined in it could not resolve its own postponed annotations (pydantic settings need that).
Importing the class from the installed package keeps it in its real module,
:mod:`policy_trainer.agent_executor`.
"""

from policy_trainer.agent_executor import AgentExecutor

__all__ = ["AgentExecutor"]
