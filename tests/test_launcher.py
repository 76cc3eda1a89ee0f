"""The GRPO launcher: its settings, the OpenRLHF command it builds, and OpenRLHF's own parser reading it."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

import policy_trainer.openrlhf_cli as openrlhf_cli
from policy_trainer.launcher import (
    REWARD_URL_VAR,
    agent_executor_path,
    build_command,
    runtime_env,
)
from policy_trainer.openrlhf_cli import (
    OpenRLHFArgsError,
    OpenRLHFError,
    OpenRLHFNotInstalledError,
    parse_openrlhf_args,
    run_openrlhf_parser,
)
from policy_trainer.settings import JobSettings, SettingsError, TrainerSettings, load_settings
from unifireward.cli import app

runner = CliRunner()
needs_openrlhf = pytest.mark.skipif(importlib.util.find_spec("openrlhf") is None, reason="make install-train")
GRPO = ["--algo.advantage.estimator", "group_norm", "--rollout.n_samples_per_prompt", "4"]
REQUIRED = ["--actor-model", "/models/policy", "--prompt-dataset", "/data/grpo/train.jsonl"]


@pytest.fixture(autouse=True)
def _no_trainer_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests set the TRAINER_* variables they need, and no others leak in."""
    for name in [n for n in os.environ if n.startswith("TRAINER_")]:
        monkeypatch.delenv(name)


def _dry_run(*args: str) -> list[str]:
    """``unifireward train --dry-run ARGS``: the printed command, as a shell would split it."""
    result = runner.invoke(app, ["train", "--dry-run", *args])
    assert result.exit_code == 0, result.output
    return shlex.split(result.stdout.replace("\\\n", " "))


def _run(**fields: object) -> TrainerSettings:
    return TrainerSettings(actor_model="/models/policy", prompt_dataset="/data/grpo/train.jsonl", **fields)


def _compeer_recipe(args: SimpleNamespace) -> None:
    assert args.actor.model_name_or_path == "/models/policy" and args.data.prompt_dataset == "/data/grpo/train.jsonl"
    assert args.algo.advantage.estimator == "group_norm" and args.rollout.n_samples_per_prompt == 4
    assert args.actor.adam.lr == pytest.approx(1e-6)
    assert args.train.batch_size == 32 and args.rollout.batch_size == 32
    assert args.algo.kl.use_loss is True and args.algo.kl.estimator == "k3" and args.algo.kl.init_coef > 0
    assert (args.data.input_key, args.data.label_key, args.data.apply_chat_template) == ("input", "label", True)
    assert args.critic.model_name_or_path is None  # group_norm: OpenRLHF drops the critic


@needs_openrlhf
def test_dry_run_with_the_reward_service_is_a_command_openrlhf_accepts() -> None:
    command = _dry_run(*REQUIRED, "--reward-url", "http://reward.esc.svc:8000")
    assert command[:3] == ["python", "-m", "openrlhf.cli.train_ppo_ray"]
    args = parse_openrlhf_args(command[3:])
    _compeer_recipe(args)
    assert args.reward.remote_url == ["http://reward.esc.svc:8000/openrlhf/reward"]
    assert args.train.agent_func_path is None


@needs_openrlhf
def test_dry_run_with_the_agent_executor_is_a_command_openrlhf_accepts() -> None:
    command = _dry_run(*REQUIRED, "--reward-source", "agent")
    args = parse_openrlhf_args(command[3:])
    _compeer_recipe(args)
    assert args.train.agent_func_path == str(agent_executor_path())
    assert Path(args.train.agent_func_path).parent == Path(openrlhf_cli.__file__).resolve().parent
    assert args.reward.remote_url == ["agent"]  # how OpenRLHF marks rewards that come from the agent


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--rollout.n_samples_per_prompt", "four"], "invalid int value: 'four'"),  # argparse
        (["--algo.advantage.estimator", "grpo"], "invalid choice: 'grpo'"),  # argparse choices
        (["--no.such_flag"], "unrecognized arguments: --no.such_flag"),
        (["--algo.advantage.estimator", "group_norm"], "group_norm requires n_samples_per_prompt > 1"),  # an assert
        ([*GRPO, "--train.partial_rollout_enable"], "requires --train.async_enable"),  # another assert
    ],
)
@needs_openrlhf
def test_openrlhf_refusals_are_typed_errors_with_its_message(argv: list[str], message: str) -> None:
    with pytest.raises(OpenRLHFArgsError, match="OpenRLHF refused") as refused:
        parse_openrlhf_args(argv)
    assert message in refused.value.message
    assert "usage:" not in refused.value.message  # the error line, not argparse's 150-flag usage


@needs_openrlhf
def test_a_crash_inside_openrlhfs_checks_is_an_error_too() -> None:
    with pytest.raises(OpenRLHFError, match="AttributeError") as crashed:  # gae without any reward model
        parse_openrlhf_args([])
    assert not isinstance(crashed.value, OpenRLHFArgsError)


@needs_openrlhf
def test_the_train_command_refuses_what_openrlhf_refuses() -> None:
    one_sample = runner.invoke(app, ["train", "--dry-run", *REQUIRED, "--n-samples-per-prompt", "1"])
    assert one_sample.exit_code == 1 and "group_norm requires n_samples_per_prompt > 1" in one_sample.stderr
    assert one_sample.stdout == ""  # nothing printed that could be mistaken for a good command
    extra = runner.invoke(app, ["train", "--dry-run", *REQUIRED, "--", "--ds.no_such_flag"])
    assert extra.exit_code == 1 and "unrecognized arguments: --ds.no_such_flag" in extra.stderr
    unchecked = runner.invoke(app, ["train", "--dry-run", "--no-check", *REQUIRED, "--", "--ds.no_such_flag"])
    assert unchecked.exit_code == 0 and "--ds.no_such_flag" in unchecked.stdout


@needs_openrlhf
def test_openrlhf_notes_are_kept() -> None:
    parsed = run_openrlhf_parser(build_command(_run(kl_estimator="k1"))[3:])
    assert any("Recommend setting k1 to 'k2' or 'k3'" in note for note in parsed.notes)
    assert run_openrlhf_parser(build_command(_run())[3:]).notes == []


@needs_openrlhf
def test_reading_the_flags_imports_none_of_the_training_stack() -> None:
    code = (
        "import sys; from policy_trainer.openrlhf_cli import parse_openrlhf_args; "
        f"parse_openrlhf_args({GRPO!r}); "
        "print([m for m in ('ray', 'torch', 'deepspeed', 'transformers', 'flash_attn') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


def test_without_openrlhf_the_error_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(openrlhf_cli.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(OpenRLHFNotInstalledError, match="make install-train"):
        parse_openrlhf_args([])
    result = runner.invoke(app, ["train", "--dry-run", *REQUIRED])  # the check is skipped, and says so
    assert result.exit_code == 0 and "not checked" in result.stderr and "--reward.remote_url" in result.stdout


def test_settings_come_from_options_then_config_file_then_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TRAINER_ACTOR_MODEL", "/models/from-env")
    monkeypatch.setenv("TRAINER_PROMPT_DATASET", "/data/from-env.jsonl")
    monkeypatch.setenv("TRAINER_N_SAMPLES_PER_PROMPT", "8")
    monkeypatch.setenv("TRAINER_EXTRA_ARGS", '["--train.max_epochs", "2"]')
    config = tmp_path / "run.yaml"
    config.write_text("actor_model: /models/from-file\ntemperature: 0.7\n")
    run = load_settings(TrainerSettings, config, {"temperature": 0.9, "actor_lr": None})
    assert (run.actor_model, run.prompt_dataset) == ("/models/from-file", "/data/from-env.jsonl")
    assert (run.n_samples_per_prompt, run.temperature, run.actor_lr) == (8, 0.9, 1e-6)
    assert build_command(run)[-2:] == ["--train.max_epochs", "2"]


def test_a_run_config_file_serves_its_preflight(tmp_path: Path) -> None:
    config = tmp_path / "run.json"
    config.write_text(json.dumps({"actor_model": "/m", "reward_url": "http://reward:8000/", "temperture": 1}))
    with pytest.raises(SettingsError, match="temperture"):  # a typo is an error for the run
        load_settings(TrainerSettings, config)
    with pytest.raises(SettingsError, match="temperture"):  # and for the preflight
        load_settings(JobSettings, config)
    config.write_text(json.dumps({"actor_model": "/m", "reward_url": "http://reward:8000/"}))
    assert load_settings(JobSettings, config).reward_url == "http://reward:8000"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"vllm_num_engines": 8}, "must equal the actor's 1 x 8"),  # colocated: 8 x 2 GPUs of engines on 8
        ({"reward_url": "reward:8000"}, "must be an http(s) URL"),
        ({"reward_source": "judge"}, "reward_source"),
        ({"n_samples_per_prompt": 0}, "n_samples_per_prompt"),
    ],
)
def test_settings_refuse_what_cannot_run(fields: dict[str, object], message: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(message)):
        load_settings(TrainerSettings, None, {"actor_model": "/m", "prompt_dataset": "/p", **fields})


def test_a_missing_setting_is_a_usage_error_naming_it() -> None:
    result = runner.invoke(app, ["train", "--dry-run", "--prompt-dataset", "/p"])
    assert result.exit_code == 2 and "actor_model: Field required" in result.stderr


def test_the_agent_executor_gets_the_reward_services_url_through_the_job_environment() -> None:
    urls = {"reward_url": "http://reward:8000", "embedder_url": "http://embedder:8001"}
    agent = runtime_env(_run(reward_source="agent", job_env={"NCCL_DEBUG": "WARN"}, **urls))
    assert agent == {
        "env_vars": {
            "NCCL_DEBUG": "WARN",
            REWARD_URL_VAR: "http://reward:8000",
        }
    }
    assert runtime_env(_run(**urls)) == {"env_vars": {}}  # remote: the reward service calls the embedder itself
    custom = build_command(_run(reward_source="agent", agent_func_path="/opt/esc/agent_executor.py"))
    assert custom[-2:] == ["--train.agent_func_path", "/opt/esc/agent_executor.py"]


def test_the_wandb_key_is_passed_but_never_printed() -> None:
    secret = "wandb-secret-0123456789"
    assert secret in build_command(_run(wandb_api_key=secret))
    result = runner.invoke(app, ["train", "--dry-run", "--no-check", *REQUIRED], env={"TRAINER_WANDB_API_KEY": secret})
    assert result.exit_code == 0 and secret not in result.output
    assert "--logger.wandb.key '***'" in result.stdout
