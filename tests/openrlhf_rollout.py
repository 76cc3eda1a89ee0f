"""A GRPO rollout through OpenRLHF 0.11.2's own code, with a scripted generator instead of vLLM.

What runs is OpenRLHF's: the prompt preprocessing (``preprocess_data`` with the tokenizer's chat
template), an agent executor's ``execute`` called ``n_samples_per_prompt`` times concurrently per
prompt (as ``RolloutRayActor.generate_responses`` does), the conversion of each response into an
``Experience`` and ``compute_advantages_and_returns``. Only the engine's ``generate`` is scripted: it
answers each prompt with the replies a test chose.

OpenRLHF's experience maker imports ``openrlhf.models``, which imports ``flash_attn`` at module top
level; flash-attn is a CUDA build, so when it is missing the CPU mode's stub package
(``policy_trainer/cpu/stubs``) stands in (its functions raise if called; nothing on this path calls them).
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import torch

from policy_trainer.cpu.adaptations import STUBS

if importlib.util.find_spec("flash_attn") is None:
    sys.path.append(str(STUBS))

from openrlhf.datasets.prompts_dataset import preprocess_data
from openrlhf.trainer.ppo_utils.experience_maker import RemoteExperienceMaker
from openrlhf.trainer.ppo_utils.kl_controller import FixedKLController
from openrlhf.trainer.ppo_utils.samples_generator import SamplesGenerator
from vllm import SamplingParams

from policy_trainer.launcher import openrlhf_flags
from policy_trainer.openrlhf_cli import parse_openrlhf_args
from policy_trainer.settings import TrainerSettings

MAX_LEN = 4096


@dataclass
class ScriptedEngine:
    """Stands in for OpenRLHF's rollout actor's ``generate``: each prompt's replies, in order."""

    tokenizer: Any
    replies: dict[tuple[int, ...], list[str]]

    async def generate(self, prompt_token_ids: list[int], sampling_params: Any, multi_modal_data: Any = None) -> Any:
        await asyncio.sleep(0)
        text = self.replies[tuple(prompt_token_ids)].pop(0) + self.tokenizer.eos_token
        ids = self.tokenizer(text=text, add_special_tokens=False)["input_ids"]
        return SimpleNamespace(outputs=[SimpleNamespace(token_ids=ids, text=text, finish_reason="stop", logprobs=None)])


def prompts_and_labels(rows: Sequence[dict[str, Any]], tokenizer: Any) -> list[tuple[str, Any]]:
    """Each row as OpenRLHF's prompt dataset reads it (``--data.apply_chat_template``)."""
    return [
        preprocess_data(row, input_key="input", label_key="label", apply_chat_template=tokenizer.apply_chat_template)
        for row in rows
    ]


async def rollout(
    executor: Any, tokenizer: Any, prompts: Sequence[tuple[str, Any]], replies: Sequence[list[str]]
) -> list[list[dict[str, Any]]]:
    """Every prompt's samples generated and rewarded concurrently, as OpenRLHF's rollout actor does."""
    script = {
        tuple(tokenizer(text=prompt, add_special_tokens=False)["input_ids"]): list(texts)
        for (prompt, _), texts in zip(prompts, replies, strict=True)
    }
    engine = ScriptedEngine(tokenizer, script)
    params = SamplingParams(max_tokens=1024, temperature=1.0)

    async def one_prompt(prompt: str, label: Any, n: int) -> list[dict[str, Any]]:
        tasks = [executor.execute(prompt, label, params, MAX_LEN, tokenizer, engine) for _ in range(n)]
        return list(await asyncio.gather(*tasks))

    groups = await asyncio.gather(
        *(one_prompt(prompt, label, len(texts)) for (prompt, label), texts in zip(prompts, replies, strict=True))
    )
    return list(groups)


def grpo_args(n_samples_per_prompt: int) -> SimpleNamespace:
    """OpenRLHF's arguments of our launcher's default GRPO run, as OpenRLHF's own parser leaves them."""
    run = TrainerSettings(
        _env_file=None,
        actor_model="/models/policy",
        prompt_dataset="rows.jsonl",
        n_samples_per_prompt=n_samples_per_prompt,
    )
    return parse_openrlhf_args(openrlhf_flags(run))


def advantages(responses: Sequence[dict[str, Any]], args: SimpleNamespace, tokenizer: Any) -> list[float]:
    """Each response's advantage, from OpenRLHF's experiences and ``compute_advantages_and_returns``.

    OpenRLHF's samples generator turns each response into an experience, the experience maker packs
    them into micro-batches and shapes the rewards; the advantage of a sample is read at its last token.
    """
    experiences = [SamplesGenerator._process_response_into_experience(None, r, max_len=MAX_LEN) for r in responses]
    maker = RemoteExperienceMaker(
        None,
        None,
        None,
        None,
        kl_controller=FixedKLController(0.0),
        strategy=SimpleNamespace(args=args),
        tokenizer=tokenizer,
    )
    batches = maker.split_rollout_samples(experiences)
    for batch in batches:
        batch.kl = torch.zeros_like(batch.action_mask, dtype=torch.float32)
        batch.values = None
    shaped = maker.compute_advantages_and_returns(batches)
    out = []
    for batch in shaped:
        for row in range(batch.advantages.shape[0]):
            mask = batch.action_mask[row].bool()
            out.append(float(batch.advantages[row][mask][-1]))
    return out
