"""``unifireward train-judge --kind generative``: OpenRLHF 0.11.2's SFT of the generative judge.

Two parts. The command line the GPU run submits is read by OpenRLHF's own ``train_sft`` parser and checks,
and must carry the paper's recipe (cheap, no training). Then the whole path on the CPU, through the real
command: the tiny Qwen2 (``tests/tiny_judge_model.py``) is fine-tuned with ``--local`` (OpenRLHF's
``train_sft`` as a Ray job on a Ray head on 127.0.0.1, DeepSpeed on gloo) on the unified-mode
conversations of 16 derived ESConv valid items, and the checkpoint is served by the service's ``vllm``
backend, structured outputs off, on the same items (``make_eval_backend`` + ``evaluate``, as
``unifireward eval-judge`` runs it). The fine-tuned judge must write judgments the service reads (>= 95%)
whose verdicts are the gold ones (>= 90%); the untrained model, measured the same way in the same test,
shows what these figures are without training.

Unified mode is the one fitted: it is what ``evaluate`` (COMPEER Table 1) asks, and it holds every turn
kind (the three steps and the preference). Dual order is off: one conversation per item.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import shlex
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.guards import ESCONV_DIR, needs_esconv
from tests.support import vllm_test_env

needs_openrlhf = pytest.mark.skipif(importlib.util.find_spec("openrlhf") is None, reason="needs make install-train")
needs_vllm = pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="needs make install-vllm")

ITEMS = 16
RATIONALE_CHARS = 160  # the shortest the SFT builder writes; short answers are quicker to fit and to generate
EPOCHS = 60
LEARNING_RATE = 3e-3
SERVE_ENV = {
    "REWARD_STRUCTURED_OUTPUTS": "false",
    "REWARD_RATIONALE_MAX_CHARS": str(RATIONALE_CHARS),
    "REWARD_MAX_TOKENS": "96",
    "REWARD_DTYPE": "float32",
    "REWARD_ENFORCE_EAGER": "true",
    "REWARD_KV_CACHE_MEMORY_BYTES": str(128 * 2**20),
    "REWARD_MAX_MODEL_LEN": "2048",
    "REWARD_DUAL_ORDER": "false",
}


def _command_of(output: str) -> list[str]:
    """The command ``--dry-run`` printed (one flag per line, shell-quoted)."""
    return shlex.split(output.replace("\\\n", " "))


# --- the command line --------------------------------------------------------------------------------


@needs_openrlhf
def test_dry_run_is_read_by_openrlhfs_own_sft_parser_with_the_papers_recipe() -> None:
    from policy_trainer.judge_sft import SFT_MODULE, openrlhf_flags_of, parse_sft_args
    from unifireward.cli import app

    result = CliRunner().invoke(app, ["train-judge", "--kind", "generative", "--dry-run"])
    assert result.exit_code == 0, result.output
    command = _command_of(result.stdout)
    assert command[:3] == ["deepspeed", "--module", SFT_MODULE]
    args = parse_sft_args(openrlhf_flags_of(command)).args
    assert args.model.model_name_or_path == "Qwen/Qwen2.5-7B-Instruct"
    assert args.adam.lr == 1e-5
    assert args.train.batch_size == 64 and args.train.micro_batch_size == 1
    assert args.data.multiturn and args.data.apply_chat_template and args.data.input_key == "messages"
    assert args.data.dataset == "data/judge-sft/openrlhf/train.jsonl"
    assert args.eval.dataset == "data/judge-sft/openrlhf/valid.jsonl"
    assert args.ds.zero_stage == 3 and args.ds.param_dtype == "bf16"
    assert args.model.gradient_checkpointing_enable
    assert args.ckpt.output_dir == "checkpoints/judge-sft"


@needs_openrlhf
def test_local_dry_run_is_the_cpu_driver_with_cpu_attention_and_options_reach_openrlhf(tmp_path: Path) -> None:
    from policy_trainer.judge_sft import SFT_DRIVER_MODULE, openrlhf_flags_of, parse_sft_args
    from unifireward.cli import app

    options = ["--model", str(tmp_path / "m"), "--learning-rate", "0.003", "--train-batch-size", "4"]
    options += ["--epochs", "5", "--max-len", "1024", "--max-samples", "12", "--no-eval", "--seed", "7"]
    result = CliRunner().invoke(app, ["train-judge", "--kind", "generative", "--local", "--dry-run", *options])
    assert result.exit_code == 0, result.output
    command = _command_of(result.stdout)
    assert command[1:3] == ["-m", SFT_DRIVER_MODULE]
    args = parse_sft_args(openrlhf_flags_of(command)).args
    assert args.ds.attn_implementation == "sdpa" and args.ds.zero_stage == 2
    assert (args.adam.lr, args.train.batch_size, args.train.max_epochs) == (0.003, 4, 5)
    assert (args.data.max_len, args.data.max_samples, args.train.seed) == (1024, 12, 7)
    assert args.eval.dataset is None


@needs_openrlhf
def test_dry_run_masks_the_wandb_key(monkeypatch: pytest.MonkeyPatch) -> None:
    from unifireward.cli import app

    monkeypatch.setenv("JUDGE_SFT_WANDB_API_KEY", "very-secret-key")
    result = CliRunner().invoke(app, ["train-judge", "--kind", "generative", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "very-secret-key" not in result.output
    command = _command_of(result.stdout)
    assert command[command.index("--logger.wandb.key") + 1] == "***"


@needs_openrlhf
def test_openrlhfs_parser_refuses_what_it_would_refuse() -> None:
    from policy_trainer.judge_sft import parse_sft_args
    from policy_trainer.openrlhf_cli import OpenRLHFArgsError

    with pytest.raises(OpenRLHFArgsError, match="unrecognized arguments"):
        parse_sft_args(["--no.such_flag", "1"])
    with pytest.raises(OpenRLHFArgsError, match="apply_chat_template"):
        parse_sft_args(["--data.multiturn"])


def test_classifier_kind_is_the_default_and_keeps_its_options(monkeypatch: pytest.MonkeyPatch) -> None:
    import unifireward.cli

    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr(unifireward.cli, "train_judge", lambda *args: calls.append(args))
    result = CliRunner().invoke(unifireward.cli.app, ["train-judge", "--data-dir", "d", "--out", "o", "--blind"])
    assert result.exit_code == 0, result.output
    assert calls == [(Path("d"), Path("o"), True, 4, 0, None, 4)]


# --- training on the CPU and serving the checkpoint -----------------------------------------------------


@pytest.fixture(scope="module")
def serving_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """vLLM in this process (one thread, caches in a temporary folder, nothing sent anywhere) and the
    service's settings for a generative judge without structured outputs."""
    root = tmp_path_factory.mktemp("caches")
    values = {
        **vllm_test_env(root),
        **SERVE_ENV,
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in values.items():
            patch.setenv(name, value)
        yield


class _Recording:
    """A judge backend that keeps every task and reply it passes on (what ``evaluate`` asked and got)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name, self.model = inner.name, inner.model
        self.max_batch_size, self.max_concurrent_batches = inner.max_batch_size, inner.max_concurrent_batches
        self.tasks: list[Any] = []
        self.replies: list[Any] = []

    async def start(self) -> None:
        await self.inner.start()

    async def close(self) -> None:
        await self.inner.close()

    def healthy(self) -> bool:
        return bool(self.inner.healthy())

    async def judge(self, tasks: Sequence[Any]) -> list[Any]:
        replies = list(await self.inner.judge(tasks))
        self.tasks += tasks
        self.replies += replies
        return replies


def judge_items(model_dir: Path, records: list[dict[str, Any]]) -> dict[str, Any]:
    """Serve ``model_dir`` with the ``vllm`` backend and judge ``records`` as ``eval-judge`` does; the share
    of judgments (turns) the service read and the share whose verdict or preference is the gold one."""
    from reward_server.judge_model.evaluate import evaluate, make_eval_backend
    from services.core.judgments import PreferenceJudgment, StepJudgment

    backend = _Recording(make_eval_backend("vllm", str(model_dir)))
    started = time.monotonic()
    table = asyncio.run(evaluate(backend, records))
    judgments = read = agree = 0
    for task, reply, record in zip(backend.tasks, backend.replies, records, strict=True):
        for turn, judged in zip(task.turns, reply.verdicts, strict=True):
            judgments += 1
            if turn.kind == "step" and isinstance(judged, StepJudgment):
                found, gold = judged.verdict, bool(record["labels"]["steps"][turn.step])
            elif isinstance(judged, PreferenceJudgment):
                found, gold = judged.preference, record["labels"]["preference"]
            else:
                raise AssertionError(f"a {turn.kind} turn was answered with {type(judged).__name__}")
            read += found is not None
            agree += found == gold
    return {
        "judgments": judgments,
        "parse_rate": round(read / judgments, 3),
        "agreement": round(agree / judgments, 3),
        "items_unparsed": table["failures"]["parse_error"],
        "backend_errors": table["failures"]["backend_error"],
        "preference_accuracy": table["preference"]["accuracy"],
        "judge_s": round(time.monotonic() - started, 1),
        "first_item_answers": [text[:160] for text in backend.replies[0].raw] if backend.replies else [],
    }


@pytest.mark.slow
@pytest.mark.ray
@pytest.mark.vllm
@needs_esconv
@needs_openrlhf
@needs_vllm
def test_sft_on_the_cpu_fits_the_items_and_the_vllm_backend_serves_the_checkpoint(
    tmp_path: Path, serving_env: None
) -> None:
    from services.data.cer_data import derive_split, write_jsonl
    from services.data.esconv import load_split
    from services.data.judge_sft import JudgeSFTConfig, build_conversations, read_items, write_formats
    from tests.tiny_judge_model import build_tiny_model
    from unifireward.cli import app

    started = time.monotonic()
    dialogues = load_split(ESCONV_DIR / "esconv_valid.jsonl")[:2]
    records = derive_split(dialogues, "valid", rounds_per_dialogue=1, seed=0)[:ITEMS]
    assert len(records) == ITEMS
    write_jsonl(records, tmp_path / "items.jsonl")
    items = read_items((json.dumps(r) for r in records), strict=True).items
    config = JudgeSFTConfig(modes=("unified",), dual_order=False, rationale_max_chars=RATIONALE_CHARS, seed=0)
    conversations = list(build_conversations(items, config))
    write_formats(conversations, tmp_path / "sft", "train")
    texts = [m["content"] for c in conversations for m in c.messages_row()["messages"]]
    base = build_tiny_model(tmp_path / "base", vocab_size=2048, extra_text=texts)

    untrained = judge_items(base, records)

    options = ["--model", str(base), "--sft-data", str(tmp_path / "sft"), "--output-dir", str(tmp_path / "judge")]
    options += ["--learning-rate", str(LEARNING_RATE), "--train-batch-size", "4", "--micro-batch-size", "1"]
    options += ["--epochs", str(EPOCHS), "--max-len", "2048", "--warmup-ratio", "0", "--no-eval"]
    options += ["--no-gradient-checkpointing", "--zero-stage", "2", "--work-dir", str(tmp_path / "run")]
    options += ["--timeout", "900"]
    trained_at = time.monotonic()
    result = CliRunner().invoke(app, ["train-judge", "--kind", "generative", "--local", *options])
    assert result.exit_code == 0, result.output[-4000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    train_s = time.monotonic() - trained_at
    # The loss as OpenRLHF's progress bar showed it (a sample of the steps: the bar redraws at most every 0.1 s).
    assert summary["losses_shown"] >= EPOCHS and summary["last_loss"] < summary["first_loss"] / 4, summary

    trained = judge_items(Path(summary["output_dir"]), records)
    figures = {
        "items": ITEMS,
        "conversations": len(conversations),
        "epochs": EPOCHS,
        "losses_shown": summary["losses_shown"],
        "first_loss": summary["first_loss"],
        "last_loss": summary["last_loss"],
        "train_s": round(train_s, 1),
        "trained": trained,
        "untrained": untrained,
        "wall_s": round(time.monotonic() - started, 1),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(figures))
    assert trained["backend_errors"] == 0
    assert trained["parse_rate"] >= 0.95, figures
    assert trained["agreement"] >= 0.90, figures
    assert untrained["agreement"] < 0.5, figures  # what the same measure gives without training
