"""TRL's ``GRPOTrainer`` on CPU, rewarded by the reward service: the recipe for teams that train with TRL.

:func:`trl_rows` turns the project's OpenRLHF prompt rows (:mod:`policy_trainer.prompts`: ``input``, a
chat, and ``label``, a JSON :class:`~services.contracts.openrlhf.PromptLabel`) into TRL's conversational
rows: ``prompt`` (the same chat) plus the ``history``, ``reference``, ``schema``, ``mode`` and ``label``
columns that :class:`~policy_trainer.trl_rewards.ServiceReward` reads. :func:`run_trl_grpo` runs a real
``trl.GRPOTrainer`` for a few steps on CPU (no vLLM) against a running reward service, and says what it
did; ``tests/test_trl_grpo.py`` runs it with a tiny random policy and both services on loopback.

TRL, transformers and datasets are imported inside the functions, so importing this module is cheap.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from policy_trainer.trl_rewards import ServiceReward
from services.contracts.openrlhf import parse_label

#: The log keys TRL 1.16 writes for a reward function named ``name``, and for the total reward.
REWARD_MEAN_KEY = "rewards/{name}/mean"
TOTAL_REWARD_KEY = "reward"


def trl_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """One TRL row from one OpenRLHF prompt row (``input`` and ``label``).

    Raises:
        ValueError: the row has no chat ``input`` or an unreadable ``label``.

    >>> label = {"group_id": "g", "history": [{"role": "seeker", "content": "hi"}], "reference": "Hey."}
    >>> row = trl_row({"input": [{"role": "user", "content": "hi"}], "label": label})
    >>> row["prompt"], row["reference"], row["history"][0]["role"]
    ([{'role': 'user', 'content': 'hi'}], 'Hey.', 'seeker')
    """
    chat = row.get("input")
    if not isinstance(chat, list) or not chat:
        raise ValueError("an OpenRLHF prompt row needs its chat in 'input'")
    raw_label = row.get("label")
    label = parse_label(raw_label, param="label")
    return {
        "prompt": [{"role": str(m["role"]), "content": str(m["content"])} for m in chat],
        "history": [{"role": m.role, "content": m.content} for m in label.history],
        "reference": label.reference or "",
        "schema": label.schema_name,
        "mode": label.mode,
        # The label as OpenRLHF passes it (a JSON string): the group id and the bookkeeping ride along.
        "label": raw_label if isinstance(raw_label, str) else json.dumps(raw_label),
    }


def trl_rows(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """TRL rows from OpenRLHF prompt rows (see :func:`trl_row`)."""
    return [trl_row(row) for row in rows]


def trl_dataset(rows: Iterable[Mapping[str, Any]]) -> Any:
    """A ``datasets.Dataset`` of TRL rows from OpenRLHF prompt rows."""
    from datasets import Dataset

    return Dataset.from_list(trl_rows(rows))


def run_trl_grpo(
    model_dir: Path,
    rows: Iterable[Mapping[str, Any]],
    reward_url: str,
    output_dir: Path,
    steps: int = 2,
    *,
    num_generations: int = 4,
    prompts_per_step: int = 2,
    max_completion_length: int = 24,
    learning_rate: float = 1e-5,
    seed: int = 0,
    reward: ServiceReward | None = None,
) -> dict[str, Any]:
    """Run TRL's ``GRPOTrainer`` on CPU for ``steps`` steps, rewarded by the reward service.

    Args:
        model_dir: the policy (a transformers causal LM with a chat template).
        rows: OpenRLHF prompt rows (``input``, ``label``); converted by :func:`trl_rows`.
        reward_url: the reward service.
        output_dir: TRL's output directory; the final checkpoint goes to ``output_dir/checkpoint-<steps>``.
        steps: optimiser steps (``max_steps``).
        num_generations: completions per prompt (the GRPO group).
        prompts_per_step: prompts per step; a step trains on ``num_generations * prompts_per_step`` completions.
        max_completion_length: tokens generated per completion.
        learning_rate: the optimiser's rate.
        seed: the run's seed.
        reward: the reward function; a :class:`ServiceReward` keeping its history when None.

    Returns:
        ``framework`` ("trl"), ``trl_version``, ``steps`` (done), ``log_keys`` (the reward keys read),
        ``reward_means`` (per step, TRL's ``rewards/<name>/mean``), ``total_reward_means`` (TRL's
        ``reward``), ``batches`` (per reward call: the completions' texts, the rewards returned, the service's
        rewards and the fallback reasons), ``fallbacks``, ``requests``, ``checkpoint``, ``output_dir``,
        ``seconds`` and ``log_history`` (TRL's, as it is).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with warnings.catch_warnings():
        # TRL 1.16 warns on import that it supports vLLM 0.22-0.31 when it finds this project's vLLM 0.32;
        # this run generates with transformers (use_vllm=False), so TRL's vLLM code is never used.
        warnings.filterwarnings("ignore", message="TRL currently supports vLLM versions", category=UserWarning)
        import trl
        from trl.trainer.grpo_config import GRPOConfig
        from trl.trainer.grpo_trainer import GRPOTrainer

    started = time.monotonic()
    dataset = trl_dataset(rows)
    if reward is None:
        reward = ServiceReward(reward_url, num_generations=num_generations, keep_history=True)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    config = GRPOConfig(
        output_dir=str(output_dir),
        max_steps=steps,
        num_generations=num_generations,
        per_device_train_batch_size=num_generations * prompts_per_step,
        gradient_accumulation_steps=1,
        max_completion_length=max_completion_length,
        learning_rate=learning_rate,
        use_vllm=False,
        use_cpu=True,
        bf16=False,
        fp16=False,
        gradient_checkpointing=False,
        report_to=[],
        logging_steps=1,
        save_strategy="steps",
        save_steps=steps,
        save_only_model=True,
        seed=seed,
        data_seed=seed,
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    trainer = GRPOTrainer(
        model=model, reward_funcs=[reward], args=config, train_dataset=dataset, processing_class=tokenizer
    )
    trainer.train()
    history: list[dict[str, Any]] = list(trainer.state.log_history)
    mean_key = REWARD_MEAN_KEY.format(name=reward.__name__)
    per_step = [entry for entry in history if mean_key in entry]
    checkpoint = output_dir / f"checkpoint-{trainer.state.global_step}"
    return {
        "framework": "trl",
        "trl_version": trl.__version__,
        "steps": int(trainer.state.global_step),
        "log_keys": [mean_key, TOTAL_REWARD_KEY],
        "reward_means": [float(entry[mean_key]) for entry in per_step],
        "total_reward_means": [float(entry[TOTAL_REWARD_KEY]) for entry in per_step if TOTAL_REWARD_KEY in entry],
        "batches": [
            {
                "completions": [r.text for r in batch],
                "rewards": [r.reward for r in batch],
                "service_rewards": [r.service_reward for r in batch],
                "group_ids": [r.group_id for r in batch],
                "fallbacks": [r.fallback for r in batch],
            }
            for batch in reward.history
        ],
        "fallbacks": reward.fallbacks,
        "requests": reward.requests,
        "checkpoint": str(checkpoint) if checkpoint.is_dir() else None,
        "output_dir": str(output_dir),
        "seconds": round(time.monotonic() - started, 2),
        "log_history": history,
    }
