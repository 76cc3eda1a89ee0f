"""The reward service's settings, from ``REWARD_*`` environment variables.

One :class:`RewardSettings` with nested groups: the judge's sampling (generative backends), the vLLM
engine, the OpenAI-compatible judge server, the embedder it calls, redundancy, and the
``/openrlhf/reward`` endpoint (its gatherer and its answers). Each group reads the same flat
variables as always (``REWARD_DTYPE``, ``REWARD_OPENAI_BASE_URL``, ``REWARD_EMBEDDER_URL``,
``REWARD_REDUNDANCY_VARIANT``, ``REWARD_COHORT_WAIT_S``, ``REWARD_OPENRLHF_DEADLINE_S``...), and the
flat keyword names still work in code (``RewardSettings(openai_base_url=...)``), so nothing a
deployment or a test sets changes.

>>> s = RewardSettings(_env_file=None, backend="fake", cohort_wait_s=5, redundancy_variant="sign_aware")
>>> s.cohort.wait_s, s.redundancy.variant, s.openrlhf.deadline_s
(5.0, 'sign_aware', 150.0)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.contracts.openrlhf import DEFAULT_STOP_MARKERS
from services.core.judge_prompts import RATIONALE_MAX_CHARS, judgment_token_budget
from services.core.redundancy import DEFAULT_ALPHA, DEFAULT_BETA
from services.core.rewards import UnparseablePolicy
from services.core.types import LengthUnit, Scoring, Variant
from services.serving.settings import ServiceSettings

BackendName = Literal["classifier", "fake", "vllm", "openai"]


class SettingsGroup(BaseSettings):
    """A nested group of the reward service's settings; its fields are ``REWARD_<PREFIX><FIELD>`` variables."""

    model_config = SettingsConfigDict(env_prefix="REWARD_", extra="forbid", validate_default=True)
    #: The flat keyword prefix of the group's fields (``openai_`` for ``openai_base_url``).
    flat_prefix: ClassVar[str] = ""


class SamplingSettings(SettingsGroup):
    """Generative judges (vllm, openai): how each judge turn is sampled."""

    structured_outputs: bool = Field(
        True, description="Constrain every judgment to its regex (a rationale line, then the verdict line)."
    )
    dual_order: bool = Field(
        False, description="Ask the preference twice, reference first and candidate first, and combine (docs)."
    )
    temperature: float = Field(0.0, ge=0.0, description="Sampling temperature of the judge (0: greedy).")
    seed: int | None = Field(0, description="Sampling seed of the judge; none for the engine's own.")
    rationale_max_chars: int = Field(
        RATIONALE_MAX_CHARS, ge=8, le=4000, description="Longest rationale a structured judgment may write."
    )
    max_tokens: int | None = Field(
        None,
        ge=1,
        description="Most tokens per judge turn. Default: enough for the longest structured judgment "
        "(4 per rationale character + 32); with structured outputs it may not be lower.",
    )
    top_logprobs: int = Field(
        5,
        ge=0,
        le=20,
        description="Alternatives per generated token whose log-probabilities a generative judge is asked for "
        "under structured outputs; the ones at the verdict give its probability of each option (docs/backends.md). "
        "0 asks for none (for servers that refuse logprobs); 20 is the most vLLM and the OpenAI API give by default.",
    )
    judge_concurrency: int = Field(
        256,
        ge=1,
        description="Candidates a generative backend (vllm, openai) judges at once, each its own conversation; "
        "the engine batches their turns continuously.",
    )

    @model_validator(mode="after")
    def _tokens_fit(self) -> Self:
        budget = judgment_token_budget(self.rationale_max_chars)
        if self.structured_outputs and self.max_tokens is not None and self.max_tokens < budget:
            raise ValueError(
                f"max_tokens {self.max_tokens} could cut a structured judgment short; with rationale_max_chars "
                f"{self.rationale_max_chars} it must be at least {budget}"
            )
        return self

    def judge_max_tokens(self) -> int:
        """Most tokens per judge turn: the setting, or enough for the longest structured judgment."""
        return self.max_tokens if self.max_tokens is not None else judgment_token_budget(self.rationale_max_chars)


class EngineSettings(SettingsGroup):
    """The vllm backend's in-process engine."""

    tensor_parallel_size: int = Field(1, ge=1, description="GPUs the vLLM engine shards the model over.")
    gpu_memory_utilization: float = Field(
        0.9, gt=0.0, le=1.0, description="Share of GPU memory vLLM may use (weights and KV cache)."
    )
    kv_cache_memory_bytes: int | None = Field(
        None, ge=1, description="KV cache size in bytes; overrides gpu_memory_utilization (CPU runs)."
    )
    max_model_len: int | None = Field(None, ge=64, description="Longest prompt plus answer; default the model's.")
    dtype: str = Field("auto", description="Weights' dtype for vLLM: auto, bfloat16, float16, float32.")
    enable_prefix_caching: bool = Field(
        True, description="Reuse the KV cache of shared prefixes (the dialogue across a candidate's turns)."
    )
    block_size: int | None = Field(
        None,
        ge=1,
        description="KV cache block size in tokens; prefix caching reuses whole blocks, so smaller blocks reuse "
        "more of each turn. Default vLLM's (16 on GPU, 128 on CPU).",
    )
    enforce_eager: bool = Field(False, description="Skip CUDA graphs and compilation (faster start, slower run).")
    max_num_seqs: int | None = Field(None, ge=1, description="Most sequences per engine step; default vLLM's.")


class OpenAIJudgeSettings(SettingsGroup):
    """The openai backend's remote server (``REWARD_OPENAI_*``)."""

    model_config = SettingsConfigDict(env_prefix="REWARD_OPENAI_", extra="forbid", validate_default=True)
    flat_prefix: ClassVar[str] = "openai_"

    base_url: str | None = Field(None, description="OpenAI-compatible server, up to /v1 (e.g. http://judge:8000/v1).")
    api_key: SecretStr | None = Field(None, description="Bearer key of the server, if it needs one.")
    max_concurrency: int = Field(64, ge=1, description="Most chat requests in flight to the server.")
    timeout_s: float = Field(120.0, gt=0, description="Read timeout of one chat request, in seconds.")
    connect_timeout_s: float = Field(5.0, gt=0, description="Connect timeout, in seconds.")
    max_retries: int = Field(
        4, ge=0, description="Retries of a chat request after 429, 503, a connect error or a closed pooled connection."
    )

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError(f"REWARD_OPENAI_BASE_URL must be an http(s) URL, not {value!r}")
        return value


class EmbedderLinkSettings(SettingsGroup):
    """The embedding service that ``/v1/rewards`` asks for redundancy (``REWARD_EMBEDDER_*``)."""

    model_config = SettingsConfigDict(env_prefix="REWARD_EMBEDDER_", extra="forbid", validate_default=True)
    flat_prefix: ClassVar[str] = "embedder_"

    url: str | None = Field(
        "http://127.0.0.1:8001",
        description="The embedding service that /v1/rewards asks for redundancy; empty: rewards are unweighted.",
    )
    api_key: SecretStr | None = Field(None, description="Bearer key for the embedding service, if it has keys.")
    timeout_s: float = Field(
        10.0, gt=0, description="Deadline of the redundancy call; past it, rewards come back unweighted and flagged."
    )

    @field_validator("url", mode="before")
    @classmethod
    def _empty_url_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value


class RedundancySettings(SettingsGroup):
    """How redundancy reweights rewards by default (``REWARD_REDUNDANCY_*``; a request may say otherwise)."""

    model_config = SettingsConfigDict(env_prefix="REWARD_REDUNDANCY_", extra="forbid", validate_default=True)
    flat_prefix: ClassVar[str] = "redundancy_"

    variant: Variant = Field(
        "paper", description="paper: r * weight (eq. 5 as printed); sign_aware: redundancy lowers any reward."
    )
    alpha: float = Field(DEFAULT_ALPHA, ge=0, description="Steepness of the length gate tau.")
    beta: float = Field(DEFAULT_BETA, ge=0, description="Reply length at which tau is 1/2.")
    length_unit: LengthUnit = Field("words", description="Reply length in words or embedder tokens.")


class CohortSettings(SettingsGroup):
    """``POST /openrlhf/reward``'s gatherer of OpenRLHF's one-sample requests (``REWARD_COHORT_*``)."""

    model_config = SettingsConfigDict(env_prefix="REWARD_COHORT_", extra="forbid", validate_default=True)
    flat_prefix: ClassVar[str] = "cohort_"

    wait_s: float = Field(
        90.0,
        gt=0,
        description="How long a GRPO group waits for its siblings after its first sample arrives; past it, the "
        "samples that came are scored as a partial group. It must cover the spread of the siblings' generation "
        "times (a long reply finishes well after a short one).",
    )
    flush_ms: float = Field(
        10.0,
        ge=0,
        description="How long a complete group waits for others to complete, to be judged with them in one batch.",
    )


class OpenRLHFSettings(SettingsGroup):
    """``POST /openrlhf/reward``'s answers (``REWARD_OPENRLHF_*``)."""

    model_config = SettingsConfigDict(env_prefix="REWARD_OPENRLHF_", extra="forbid", validate_default=True)
    flat_prefix: ClassVar[str] = "openrlhf_"

    deadline_s: float = Field(
        150.0,
        gt=0,
        lt=180,
        description="Every /openrlhf/reward request is answered within this many seconds (OpenRLHF gives up at "
        "180); a sample not scored by then gets the fallback reward, flagged.",
    )
    fallback_reward: float = Field(
        0.0, allow_inf_nan=False, description="Reward of a sample the judge could not score (flagged fallback=1)."
    )
    stop_markers: list[str] = Field(
        default_factory=lambda: list(DEFAULT_STOP_MARKERS),
        description="End-of-turn markers cut off the end of the policy's output (the query keeps special tokens).",
    )


#: The nested groups: field name on :class:`RewardSettings` -> group class.
GROUPS: dict[str, type[SettingsGroup]] = {
    "sampling": SamplingSettings,
    "engine": EngineSettings,
    "openai": OpenAIJudgeSettings,
    "embedder": EmbedderLinkSettings,
    "redundancy": RedundancySettings,
    "cohort": CohortSettings,
    "openrlhf": OpenRLHFSettings,
}


class RewardSettings(ServiceSettings):
    """Everything the reward service can be told; ``python -m reward_server`` and the CLI read it."""

    model_config = SettingsConfigDict(env_prefix="REWARD_", extra="forbid", validate_default=True)

    port: int = Field(8000, ge=1, le=65535, description="TCP port.")
    backend: BackendName = Field(
        "classifier",
        description="Judge backend: classifier (CPU default), vllm (in-process engine), openai (an "
        "OpenAI-compatible server) or fake (tests).",
    )
    model: str | None = Field(
        None,
        description="Model of the backend: for classifier, the artifact (.npz; default the packaged one); for vllm, "
        "a local Hugging Face model directory; for openai, the model name the server knows.",
    )
    encoder: str | None = Field(
        None, description="Sentence encoder of the classifier judge (path or name). Default: the packaged MiniLM."
    )
    device: str = Field("cpu", description="Torch device of local models (cpu, cuda, cuda:1...).")
    scoring: Scoring = Field(
        "discrete",
        description="How verdicts become the reward: discrete (COMPEER's +1/-1) or expected (each +1/-1 replaced "
        "by its expectation under the judge's probabilities); a request with options may say otherwise.",
    )
    unparseable: UnparseablePolicy = Field(
        UnparseablePolicy.ZERO,
        description="How a judgment the parser cannot read counts: zero, negative (-1) or positive (+1).",
    )
    max_items_per_request: int = Field(256, ge=1, description="Most items in one judge request (413 above).")
    max_field_chars: int = Field(16_000, ge=100, description="Longest text field (candidate, reference, message).")
    max_history_messages: int = Field(200, ge=1, description="Most dialogue messages per item.")
    answer_log: Path | None = Field(
        None,
        description="Append one JSON line per scored output (group, id, SHA-256 of its text, reward) to this file, "
        "so a training run's logged rewards can be checked against what the service answered; off when unset.",
    )
    max_open_cohorts: int = Field(
        100_000, ge=1, description="Groups of /openrlhf/reward waiting for siblings at once; past it, requests get 429."
    )
    fake_delay_s: float = Field(
        0.0, ge=0, description="Seconds the fake backend sleeps per judge batch (load and fault tests); 0: none."
    )

    sampling: SamplingSettings = Field(default_factory=SamplingSettings, description=SamplingSettings.__doc__)
    engine: EngineSettings = Field(default_factory=EngineSettings, description=EngineSettings.__doc__)
    openai: OpenAIJudgeSettings = Field(default_factory=OpenAIJudgeSettings, description=OpenAIJudgeSettings.__doc__)
    embedder: EmbedderLinkSettings = Field(
        default_factory=EmbedderLinkSettings, description=EmbedderLinkSettings.__doc__
    )
    redundancy: RedundancySettings = Field(default_factory=RedundancySettings, description=RedundancySettings.__doc__)
    cohort: CohortSettings = Field(default_factory=CohortSettings, description=CohortSettings.__doc__)
    openrlhf: OpenRLHFSettings = Field(default_factory=OpenRLHFSettings, description=OpenRLHFSettings.__doc__)

    @model_validator(mode="before")
    @classmethod
    def _route_flat_names(cls, data: Any) -> Any:
        """Build each group from its flat keyword names (``openai_base_url=...``) and its variables."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for name, group in GROUPS.items():
            given = {
                field: data.pop(group.flat_prefix + field)
                for field in group.model_fields
                if group.flat_prefix + field in data
            }
            if given and name not in data:
                data[name] = group(**given)
            elif given:
                raise ValueError(f"give {name} settings either nested or by their flat names, not both")
        return data

    @model_validator(mode="after")
    def _check_backend(self) -> Self:
        if self.backend in ("vllm", "openai") and not self.model:
            raise ValueError(f"backend {self.backend} needs REWARD_MODEL (a model directory or the served name)")
        if self.backend == "openai" and not self.openai.base_url:
            raise ValueError("backend openai needs REWARD_OPENAI_BASE_URL")
        if self.cohort.wait_s >= self.openrlhf.deadline_s:
            raise ValueError(
                f"cohort_wait_s ({self.cohort.wait_s}) must be below openrlhf_deadline_s ({self.openrlhf.deadline_s}), "
                "or the group's judging would have no time left"
            )
        return self

    def artifact_path(self) -> Path | None:
        """The classifier artifact, when one is named."""
        return Path(self.model) if self.model else None
