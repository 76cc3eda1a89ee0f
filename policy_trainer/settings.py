"""The GRPO run's settings, from ``TRAINER_*`` environment variables, a config file or the CLI.

The defaults are COMPEER's GRPO recipe (group-normalised advantages over 4 replies per prompt, actor
learning rate 1e-6, batch 32, KL to the reference as a k3 loss) on one 8-GPU node where the actor, the
reference and 4 vLLM engines of 2 GPUs share the GPUs (``colocate_all``). Everything OpenRLHF has
beyond these is passed through ``extra_args``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Self, TypeVar

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

RewardSource = Literal["remote", "agent"]


class JobSettings(BaseSettings):
    """Where a job goes: the Ray cluster, the services as its nodes reach them, and the job's environment."""

    model_config = SettingsConfigDict(env_prefix="TRAINER_", extra="forbid", validate_default=True)

    ray_address: str = Field(
        "http://127.0.0.1:8265", description="The Ray cluster's job server: the dashboard's address on the head node."
    )
    python: str = Field("python", description="The Python on the Ray nodes that has the project and OpenRLHF.")
    reward_url: str = Field(
        "http://127.0.0.1:8000", description="The reward service, as the GPU nodes reach it (base URL)."
    )
    embedder_url: str = Field(
        "http://127.0.0.1:8001",
        description="The embedder, as the GPU nodes reach it (base URL): preflight checks it from every node. "
        "Rewards are reweighted by the reward service, which calls its own embedder (REWARD_EMBEDDER_URL).",
    )
    job_env: dict[str, str] = Field(
        default_factory=dict, description="More environment variables for the job's processes (JSON object)."
    )

    @field_validator("ray_address", "reward_url", "embedder_url")
    @classmethod
    def _check_urls(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"must be an http(s) URL, not {value!r}")
        return value.rstrip("/")


class TrainerSettings(JobSettings):
    """One GRPO run on Ray: the policy, its data, the recipe, the GPUs and the reward source."""

    # The policy and its prompts.
    actor_model: str = Field(
        description="The policy to train: a Hugging Face model directory on the GPU nodes, or a hub name "
        "(--actor.model_name_or_path)."
    )
    prompt_dataset: str = Field(
        description="The GRPO prompts, one per line: a JSON Lines file on storage every node sees (OpenRLHF's "
        "trainer actor reads it wherever Ray places it), or a Hugging Face dataset name (--data.prompt_dataset)."
    )
    input_key: str = Field("input", description="Field of a prompt line holding the prompt (--data.input_key).")
    label_key: str = Field(
        "label", description="Field handed to the reward with each reply: reference and group key (--data.label_key)."
    )
    apply_chat_template: bool = Field(
        True, description="Render prompts with the policy tokenizer's chat template (--data.apply_chat_template)."
    )
    max_len: int = Field(4096, ge=64, description="Longest prompt plus reply, in tokens (--data.max_len).")
    max_new_tokens: int = Field(
        1024, ge=1, description="Longest reply (reasoning steps and response), in tokens (--rollout.max_new_tokens)."
    )
    temperature: float = Field(1.0, gt=0, description="Sampling temperature of the rollouts (--rollout.temperature).")

    # The GRPO recipe.
    advantage_estimator: str = Field(
        "group_norm", description="group_norm is GRPO: each reward minus its group's mean, over the group's std."
    )
    n_samples_per_prompt: int = Field(
        4, ge=1, description="G, replies sampled per prompt (--rollout.n_samples_per_prompt)."
    )
    rollout_batch_size: int = Field(32, ge=1, description="Prompts per rollout (--rollout.batch_size).")
    train_batch_size: int = Field(
        32, ge=1, description="Replies per optimiser step, over all GPUs (--train.batch_size)."
    )
    rollout_micro_batch_size: int = Field(
        4, ge=1, description="Replies per GPU per forward pass when scoring log-probs (--rollout.micro_batch_size)."
    )
    train_micro_batch_size: int = Field(
        2, ge=1, description="Replies per GPU per forward-backward pass (--train.micro_batch_size)."
    )
    actor_lr: float = Field(1e-6, gt=0, description="Learning rate of the policy (--actor.adam.lr).")
    kl_loss: bool = Field(True, description="KL to the reference as a loss term, as GRPO does (--algo.kl.use_loss).")
    kl_estimator: Literal["k1", "k2", "k3"] = Field("k3", description="KL estimator (--algo.kl.estimator).")
    kl_coef: float = Field(1e-3, ge=0, description="Weight of the KL term (--algo.kl.init_coef); 0: no reference.")
    num_episodes: int = Field(1, ge=1, description="Passes over the prompts (--train.num_episodes).")
    seed: int = Field(42, description="Seed of sampling and data order (--train.seed).")

    # The GPUs.
    num_nodes: int = Field(1, ge=1, description="Nodes of the actor, and of the reference (--actor/--ref.num_nodes).")
    gpus_per_node: int = Field(8, ge=1, description="GPUs per node (--actor/--ref.num_gpus_per_node).")
    vllm_num_engines: int = Field(4, ge=1, description="vLLM engines generating the rollouts (--vllm.num_engines).")
    vllm_tensor_parallel_size: int = Field(2, ge=1, description="GPUs per vLLM engine (--vllm.tensor_parallel_size).")
    vllm_gpu_memory_utilization: float = Field(
        0.5, gt=0, le=1, description="Share of GPU memory vLLM takes; colocated, the rest trains."
    )
    colocate_all: bool = Field(
        True,
        description="Actor, reference and vLLM engines share the GPUs and sleep in turn (--train.colocate_all, "
        "--vllm.enable_sleep, --ds.enable_sleep); the engines' GPUs must then equal the actor's.",
    )
    zero_stage: int = Field(3, ge=0, le=3, description="DeepSpeed ZeRO stage (--ds.zero_stage).")
    gradient_checkpointing: bool = Field(
        True, description="Recompute activations in the backward pass (--actor.gradient_checkpointing_enable)."
    )

    # Outputs and logs.
    output_dir: str = Field(
        "./ckpt/compeer-grpo",
        description="Where the trained policy is saved (--ckpt.output_dir) by the first actor's GPU node: give storage "
        "every node sees; a relative path is relative to the job's working directory.",
    )
    save_steps: int = Field(-1, description="Checkpoint every N steps; -1: only the final model (--ckpt.save_steps).")
    tensorboard_dir: str | None = Field(None, description="TensorBoard logs (--logger.tensorboard_dir).")
    wandb_api_key: SecretStr | None = Field(
        None, description="Weights & Biases key; logging to W&B is on when set (--logger.wandb.key). Never printed."
    )
    wandb_project: str = Field("compeer-grpo", description="W&B project (--logger.wandb.project).")
    wandb_run_name: str | None = Field(None, description="W&B run name (--logger.wandb.run_name).")

    # The reward (reward_url and embedder_url above).
    reward_source: RewardSource = Field(
        "remote",
        description="remote: OpenRLHF posts each reply to the reward service's /openrlhf/reward, which gathers the "
        "groups (--reward.remote_url). agent: the agent executor gathers each group in the rollout actor and calls "
        "both services (--train.agent_func_path).",
    )
    agent_func_path: str | None = Field(
        None,
        description="The agent executor file as the GPU nodes see it. Default: policy_trainer/openrlhf_agent.py of "
        "this installation (the same path on every node when they run one image).",
    )

    extra_args: list[str] = Field(
        default_factory=list, description="Further OpenRLHF flags, passed as given after the ones above (JSON list)."
    )

    @model_validator(mode="after")
    def _check_topology(self) -> Self:
        actor_gpus = self.num_nodes * self.gpus_per_node
        engine_gpus = self.vllm_num_engines * self.vllm_tensor_parallel_size
        if self.colocate_all and actor_gpus != engine_gpus:
            raise ValueError(
                f"colocate_all shares the GPUs: the vLLM engines' {self.vllm_num_engines} x "
                f"{self.vllm_tensor_parallel_size} GPUs must equal the actor's {self.num_nodes} x {self.gpus_per_node}"
            )
        return self


S = TypeVar("S", bound=JobSettings)


class SettingsError(ValueError):
    """The settings are incomplete or wrong; the message names each field at fault."""


def read_config_file(path: Path) -> dict[str, Any]:
    """A config file: one JSON (or, for ``.yaml``/``.yml``, YAML) object of settings, by field name.

    Raises:
        SettingsError: the file cannot be read or is not one object.
    """
    try:
        text = path.read_text()
        if path.suffix in (".yaml", ".yml"):
            import yaml

            values = yaml.safe_load(text)
        else:
            values = json.loads(text)
    except (OSError, ValueError) as exc:  # yaml's and json's errors are ValueErrors
        raise SettingsError(f"cannot read the config file {path}: {exc}") from exc
    if not isinstance(values, dict):
        raise SettingsError(f"the config file {path} must hold one object of settings, by field name")
    return values


def load_settings(cls: type[S], path: Path | None = None, overrides: Mapping[str, Any] | None = None) -> S:
    """Settings from, first to last: ``overrides`` (the CLI's options), the config file, ``TRAINER_*``
    variables, the defaults.

    A run's config file serves its preflight too: reading it as :class:`JobSettings` leaves out the run's
    own fields (any other unknown field is still an error).

    Raises:
        SettingsError: the config file cannot be read, or a field is missing or wrong.
    """
    values = read_config_file(path) if path is not None else {}
    values = {k: v for k, v in values.items() if k in cls.model_fields or k not in TrainerSettings.model_fields}
    values |= {k: v for k, v in (overrides or {}).items() if v is not None}
    try:
        return cls(**values)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors())
        raise SettingsError(f"{problems} (options, a config file or TRAINER_* variables set these)") from None
