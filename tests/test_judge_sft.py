"""The judge's SFT data: the conversations the service sends, token for token, with gold answers it parses.

The central check renders real derived items both ways: as ``POST /v1/judge`` requests through the
reward service with its ``vllm`` backend (vLLM's own renderer, built from the same engine arguments as
``AsyncLLM`` builds it; only the engine core is replaced by a stand-in that records each prompt and
answers with the gold judgment), and through :mod:`services.data.judge_sft`. Every prompt the backend
sends must equal, token for token under the tiny Qwen2 chat template, the builder's conversation cut
before the matching assistant turn, as OpenRLHF and TRL tokenize it for training.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import re
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from typer.testing import CliRunner

from reward_server.app import create_app
from reward_server.backends.conversation import Completion, JudgeSampling, judge_tasks
from reward_server.backends.fake import FakeJudge
from reward_server.serving_judge import JudgeService
from reward_server.settings import RewardSettings
from services.contracts.reward import JudgeItem, JudgeRequest
from services.core.dual_order import SWAPPED
from services.core.judge_prompts import RATIONALE_MAX_CHARS, JudgeTask, judgment_regex
from services.core.judgments import StepJudgment, read_answer
from services.core.schemas import SCHEMAS
from services.core.types import JudgeMode
from services.data import judge_sft
from services.data.cer_data import derive_split
from services.data.esconv import load_split
from services.data.judge_sft import (
    MIN_RATIONALE_CHARS,
    CerItem,
    JudgeConversation,
    JudgeSFTConfig,
    RecordError,
    build_conversations,
    item_conversations,
    read_items,
    write_formats,
)
from tests.support import in_process
from tests.tiny_judge_model import train_tokenizer

ESCONV = Path(__file__).resolve().parents[2] / "shared" / "data" / "esconv"
MODES: tuple[JudgeMode, ...] = ("unified", "prm", "orm")
Ids = tuple[int, ...]


# --- data ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def records() -> list[dict[str, Any]]:
    """The derived items of the first four ESConv valid dialogues, by the project's own derivation."""
    path = ESCONV / "esconv_valid.jsonl"
    if not path.exists():
        pytest.skip("ESConv is not available at ../shared/data/esconv")
    return derive_split(load_split(path)[:4], "valid", rounds_per_dialogue=4, seed=0)


@pytest.fixture(scope="module")
def items(records: list[dict[str, Any]]) -> list[CerItem]:
    read = read_items((json.dumps(r) for r in records), strict=True)
    assert len(read.items) == len(records) and not read.skipped
    return read.items


@pytest.fixture(scope="module")
def handful(items: list[CerItem]) -> list[CerItem]:
    """Every item of the first round of two dialogues: each corruption, true and false steps, all four options."""
    keys = list(dict.fromkeys(item.round_key for item in items))
    chosen = [keys[0], next(k for k in keys if k is not None and k[1] == 2)]
    picked = [item for item in items if item.round_key in chosen]
    assert {i.labels.preference for i in picked} == {"first", "second", "equal", "neither"}
    assert {i.corruption for i in picked} >= {"gold", "stage", "emotion", "strategy", "filler", "both_bad"}
    return picked


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny judge tokenizer (tests/tiny_judge_model.py) with a Qwen2 config: all vLLM's renderer and the
    trainers' tokenizer loading read (no weights: no model is run)."""
    from transformers import Qwen2Config

    directory = tmp_path_factory.mktemp("tiny-qwen2-tokenizer")
    trained = train_tokenizer(1024)
    trained.save_pretrained(directory)
    Qwen2Config(
        vocab_size=len(trained),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=8192,
    ).save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path) -> Any:
    """The tokenizer as vLLM, OpenRLHF (``get_tokenizer``) and TRL load it from the model directory.

    Loaded, not the trained object itself: for a ``qwen2`` config transformers loads ``Qwen2Tokenizer``,
    whose pre-tokenizer splits digits one by one, unlike the in-memory tokenizer; both sides of every
    comparison must read the same one, the one a deployment reads.
    """
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


def chat_ids(tokenizer: Any, messages: Sequence[dict[str, str]]) -> Ids:
    """The prompt ids of a chat prefix, as OpenRLHF's multi-turn SFT and vLLM's renderer compute them."""
    return tuple(
        tokenizer.apply_chat_template(list(messages), tokenize=True, add_generation_prompt=True, return_dict=False)
    )


def assistant_prefixes(conversations: Sequence[JudgeConversation]) -> dict[str, str]:
    """Each assistant turn's prefix (JSON of the messages before it) and the gold answer after it."""
    out: dict[str, str] = {}
    for conversation in conversations:
        for i, message in enumerate(conversation.messages):
            if message["role"] == "assistant":
                key = json.dumps(conversation.messages[:i])
                assert out.setdefault(key, message["content"]) == message["content"], "one prefix, two answers"
    return out


def expected_prompts(tokenizer: Any, conversations: Sequence[JudgeConversation]) -> dict[Ids, str]:
    """The builder's conversations cut before each assistant turn, tokenized; and the gold answer there."""
    return {
        chat_ids(tokenizer, json.loads(prefix)): answer for prefix, answer in assistant_prefixes(conversations).items()
    }


def _common(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def compare_prompts(sent: Sequence[Ids], expected: Sequence[Ids], decode: Callable[[list[int]], str]) -> list[str]:
    """Every difference between the prompts a backend sent and the builder's prefixes (each exactly once).

    Returns:
        One line per prompt sent that the builder does not have (with the first differing token and the
        text around it) and per builder prefix never sent; empty when they are identical.
    """
    problems: list[str] = []
    left = Counter(expected)
    for ids in sent:
        if left[ids] > 0:
            left[ids] -= 1
            continue
        nearest = max(expected, key=lambda e: _common(e, ids), default=())
        n = _common(nearest, ids)
        problems.append(
            f"sent a prompt of {len(ids)} tokens the builder lacks; first difference at token {n}: "
            f"sent {decode(list(ids[n : n + 12]))!r}, builder {decode(list(nearest[n : n + 12]))!r}"
        )
    problems += [f"builder prefix of {len(ids)} tokens never sent" for ids, count in left.items() if count > 0]
    return problems


# --- gold answers -------------------------------------------------------------------------------------


def gold_of(conversation: JudgeConversation, item: CerItem) -> list[bool | str]:
    """The labels the conversation's answers must parse to, in turn order."""
    task = judge_sft.item_task(item, conversation.mode)
    labels: list[bool | str] = []
    for turn in task.turns:
        if turn.step is not None:
            labels.append(item.labels.steps[turn.step])
        else:
            pref = item.labels.preference
            labels.append(SWAPPED[pref] if conversation.order == "candidate_first" else pref)
    return labels


@pytest.mark.parametrize("max_chars", [RATIONALE_MAX_CHARS, MIN_RATIONALE_CHARS])
def test_gold_answers_match_the_structured_regex_and_parse_to_the_gold_labels(
    items: list[CerItem], max_chars: int
) -> None:
    config = JudgeSFTConfig(rationale_max_chars=max_chars)
    by_id = {item.id: item for item in items}
    kinds: Counter[str] = Counter()
    for conversation in build_conversations(items, config):
        item = by_id[conversation.item_id]
        task = judge_sft.item_task(item, conversation.mode)
        roles = [m["role"] for m in conversation.messages]
        assert roles == ["system"] + ["user", "assistant"] * len(task.turns)
        answers = [m["content"] for m in conversation.messages[2::2]]
        for turn, answer, label in zip(task.turns, answers, gold_of(conversation, item), strict=True):
            assert re.fullmatch(judgment_regex(turn.kind, max_chars), answer), answer
            judgment = read_answer(turn.kind, answer)
            assert judgment.status == "ok"
            read = judgment.verdict if isinstance(judgment, StepJudgment) else judgment.preference
            assert read == label, (conversation.id, answer)
        kinds[conversation.mode + "/" + conversation.order] += 1
    n = len(items)
    assert kinds == {
        "unified/reference_first": n,
        "unified/candidate_first": n,
        "prm/reference_first": n,
        "orm/reference_first": n,
        "orm/candidate_first": n,
    }


def test_the_swapped_conversation_is_the_service_swap_with_the_letter_read_back(handful: list[CerItem]) -> None:
    for item in handful:
        original, swapped = item_conversations(item, JudgeSFTConfig(modes=("unified",)))
        assert swapped.messages[:-2] == original.messages[:-2]
        assert "First reply (candidate)" in swapped.messages[-2]["content"]
        rationale, line = original.messages[-1]["content"].splitlines()
        assert swapped.messages[-1]["content"].splitlines() == [
            rationale,
            line[:-1] + {"A": "B", "B": "A"}.get(line[-1], line[-1]),
        ]


def test_false_steps_name_the_stated_and_the_gold_value(items: list[CerItem]) -> None:
    golds = judge_sft.gold_values(items)
    field_of = {"stage": "stage", "emotion": "emotion", "strategy": "strategy"}
    checked = 0
    for item in items:
        if item.corruption not in field_of or item.round_key is None:
            continue
        gold = golds[item.round_key]
        (conversation,) = item_conversations(item, JudgeSFTConfig(modes=("prm",)), gold)
        task = judge_sft.item_task(item, "prm")
        for turn, answer in zip(task.turns, conversation.messages[2::2], strict=True):
            assert turn.step is not None
            if item.labels.steps[turn.step]:
                continue
            name = field_of[item.corruption]
            stated = task.candidate.steps[turn.step].fields[name]
            assert stated != gold[name]
            assert stated.lower() in answer["content"].lower() and gold[name].lower() in answer["content"].lower()
            checked += 1
    assert checked >= 3 * 12


def test_output_is_a_function_of_the_seed_and_the_wording_varies(items: list[CerItem]) -> None:
    def dump(seed: int) -> list[list[dict[str, str]]]:
        return [c.messages for c in build_conversations(items, JudgeSFTConfig(seed=seed))]

    first, again, other = dump(0), dump(0), dump(1)
    assert first == again
    assert first != other
    for a, b in zip(first, other, strict=True):  # the questions never change, nor the verdict lines
        assert [m["content"] for m in a if m["role"] != "assistant"] == [
            m["content"] for m in b if m["role"] != "assistant"
        ]
        assert [m["content"].splitlines()[-1] for m in a[2::2]] == [m["content"].splitlines()[-1] for m in b[2::2]]
    rationales = Counter(m["content"].splitlines()[0] for c in first for m in c[2::2])
    assert len(rationales) >= 60
    assert max(rationales.values()) < 0.1 * sum(rationales.values())


# --- the service's own request path -------------------------------------------------------------------


def wire_request(item: CerItem, mode: JudgeMode) -> dict[str, Any]:
    """The JSON body a client sends for this item (services/contracts/reward.py)."""
    request = JudgeRequest(
        schema=item.schema_name,
        mode=mode,
        items=[JudgeItem(id=item.id, history=item.messages(), candidate=item.candidate, reference=item.reference)],
    )
    return request.model_dump(mode="json", by_alias=True, exclude_none=True)


async def test_the_generative_backends_turn_loop_asks_the_builders_messages(handful: list[CerItem]) -> None:
    """Without vLLM: the request translated by the service, the turn loop the vllm and openai backends share."""
    service = JudgeService(FakeJudge(), RewardSettings(_env_file=None, backend="fake"), CollectorRegistry())
    sampling = JudgeSampling(dual_order=True)
    for item in handful:
        for mode in MODES:
            gold = assistant_prefixes(item_conversations(item, JudgeSFTConfig(modes=(mode,))))
            asked: list[str] = []

            async def complete(messages: list[dict[str, str]], regex: str | None) -> Completion:
                asked.append(json.dumps(messages))  # noqa: B023 (called within this iteration)
                answer = gold.get(json.dumps(messages), "Not a builder prompt.\nVerdict: True")  # noqa: B023
                assert regex is not None and re.fullmatch(regex, answer)
                return Completion(answer)

            tasks = [i.task for i in service.translate(JudgeRequest.model_validate(wire_request(item, mode)))]
            await judge_tasks(complete, tasks, sampling)
            assert sorted(asked) == sorted(gold), (item.id, mode)


@dataclass
class Capture:
    """What the stand-in engine saw: the prompts of the current request, and its answers."""

    answers: dict[Ids, str] = field(default_factory=dict)
    sent: list[Ids] = field(default_factory=list)
    off_regex: list[str] = field(default_factory=list)


class RecordingEngine:
    """vLLM's engine as the ``vllm`` backend uses it, minus the engine core: the real renderer, and a
    ``generate`` that records each prompt and answers with the gold judgment for it."""

    def __init__(self, renderer: Any, capture: Capture) -> None:
        self.renderer = renderer
        self.capture = capture
        self.errored = False

    async def generate(self, prompt: dict[str, Any], params: Any, request_id: str) -> AsyncIterator[Any]:
        ids = tuple(prompt["prompt_token_ids"])
        self.capture.sent.append(ids)
        regex = params.structured_outputs.regex
        fallback = "Not a builder prompt.\n" + ("Verdict: True" if "Verdict" in regex else "Preference: C")
        answer = self.capture.answers.get(ids, fallback)
        if not re.fullmatch(regex, answer):
            self.capture.off_regex.append(answer)
        tokens = self.renderer.get_tokenizer().encode(answer, add_special_tokens=False)
        out = SimpleNamespace(token_ids=tokens, finish_reason="stop", logprobs=None)
        yield SimpleNamespace(outputs=[out], prompt_token_ids=list(ids), num_cached_tokens=0)

    async def reset_prefix_cache(self) -> None:
        """Nothing is cached."""

    def shutdown(self) -> None:
        self.renderer.shutdown()


@dataclass
class Served:
    """Per (item, mode): the prompts the vllm backend sent, and the service's response."""

    sent: dict[tuple[str, JudgeMode], list[Ids]]
    responses: dict[tuple[str, JudgeMode], dict[str, Any]]
    off_regex: list[str]
    decode: Callable[[list[int]], str]


@contextlib.contextmanager
def vllm_environment(root: Path) -> Iterator[None]:
    values = {
        "HF_HUB_OFFLINE": "1",
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
        "VLLM_CACHE_ROOT": str(root / "vllm"),
        "VLLM_REGEX_COMPILATION_TIMEOUT_S": "0",  # the backend sets it on start; kept here so it is undone
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in values.items():
            patch.setenv(name, value)
        yield


async def serve(model_dir: Path, handful: list[CerItem], tokenizer: Any) -> Served:
    """Send every (item, mode) of the handful to the reward service on its vllm backend, dual order on."""
    from vllm.engine.arg_utils import AsyncEngineArgs
    from vllm.renderers import renderer_from_config

    from reward_server.backends.vllm import LOGPROBS_MODE

    settings = RewardSettings(
        _env_file=None,
        backend="vllm",
        model=str(model_dir),
        dtype="float32",
        enforce_eager=True,
        max_model_len=8192,
        kv_cache_memory_bytes=64 * 2**20,
        dual_order=True,
    )
    app = create_app(settings)
    backend = app.state.backend
    capture = Capture()

    def build_engine() -> None:
        # AsyncLLM.from_engine_args up to the engine core: the same config, the renderer it builds.
        config = AsyncEngineArgs(**{"logprobs_mode": LOGPROBS_MODE, **backend.args}).create_engine_config()
        backend._engine = RecordingEngine(renderer_from_config(config), capture)

    backend._build_engine = build_engine
    sent: dict[tuple[str, JudgeMode], list[Ids]] = {}
    responses: dict[tuple[str, JudgeMode], dict[str, Any]] = {}
    async with in_process(app, load_timeout_s=300) as client:
        assert app.state.load_status == "ok"
        for item in handful:
            for mode in MODES:
                capture.answers = expected_prompts(tokenizer, item_conversations(item, JudgeSFTConfig(modes=(mode,))))
                capture.sent = []
                reply = await client.post("/v1/judge", json=wire_request(item, mode))
                assert reply.status_code == 200, reply.text
                sent[item.id, mode] = capture.sent
                responses[item.id, mode] = reply.json()
    return Served(sent, responses, capture.off_regex, tokenizer.decode)


@pytest.fixture(scope="module")
def served(
    tiny_model_dir: Path, handful: list[CerItem], tokenizer: Any, tmp_path_factory: pytest.TempPathFactory
) -> Served:
    if importlib.util.find_spec("vllm") is None:
        pytest.skip("vLLM is not installed (make install-vllm)")
    with vllm_environment(tmp_path_factory.mktemp("vllm-caches")):
        return asyncio.run(serve(tiny_model_dir, handful, tokenizer))


def builder_prompts(tokenizer: Any, item: CerItem, mode: JudgeMode) -> list[Ids]:
    return list(expected_prompts(tokenizer, item_conversations(item, JudgeSFTConfig(modes=(mode,)))))


def test_vllm_backend_sends_the_builders_prompts_token_for_token(
    served: Served, handful: list[CerItem], tokenizer: Any
) -> None:
    turns = 0
    for item in handful:
        for mode in MODES:
            sent = served.sent[item.id, mode]
            assert compare_prompts(sent, builder_prompts(tokenizer, item, mode), served.decode) == []
            turns += len(sent)
    # unified: 3 steps + 2 orders, prm: 3 steps, orm: 2 orders
    assert turns == len(handful) * (5 + 3 + 2)
    assert served.off_regex == []


def test_the_service_reads_the_gold_answers_back_as_the_gold_labels(served: Served, handful: list[CerItem]) -> None:
    for item in handful:
        for mode in MODES:
            (result,) = served.responses[item.id, mode]["results"]
            assert result["status"] == "ok", result
            steps = {s["step"]: s["verdict"] for s in result["judgments"]["steps"]}
            if mode != "orm":
                assert steps == item.labels.steps
            if mode != "prm":  # dual order: both orders' gold answers agree once read back
                assert result["judgments"]["preference"]["option"] == item.labels.preference
                assert "both orders agree" in result["judgments"]["raw"][-1]


def test_a_template_that_drifts_in_the_builder_is_reported(
    served: Served, handful: list[CerItem], tokenizer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    service_task = judge_sft.build_task

    def drifted(*args: Any, **kwargs: Any) -> JudgeTask:
        task = service_task(*args, **kwargs)
        turns = tuple(
            replace(t, prompt=t.prompt.replace("Is this step correct", "Is the step correct")) for t in task.turns
        )
        return replace(task, turns=turns)

    monkeypatch.setattr(judge_sft, "build_task", drifted)  # the builder's path only: the service's is untouched
    item = next(i for i in handful if i.corruption == "gold")
    problems = compare_prompts(served.sent[item.id, "prm"], builder_prompts(tokenizer, item, "prm"), served.decode)
    assert len(problems) == 6  # three prompts sent that the builder lacks, three builder prefixes never sent
    assert "first difference at token" in problems[0] and "this step" in problems[0]


# --- the two formats, as their trainers read them ----------------------------------------------------


def test_openrlhf_multiturn_trains_exactly_the_gold_answers_after_the_service_prompts(
    handful: list[CerItem], tokenizer: Any, tmp_path: Path
) -> None:
    """OpenRLHF 0.11.2's SFTDataset (--data.input_key messages --data.apply_chat_template --data.multiturn)."""
    pytest.importorskip("openrlhf")
    from datasets import load_dataset
    from openrlhf.datasets.sft_dataset import SFTDataset

    conversations = list(build_conversations(handful, JudgeSFTConfig()))
    write_formats(conversations, tmp_path, "train")
    data = load_dataset("json", data_files=str(tmp_path / "openrlhf" / "train.jsonl"), cache_dir=str(tmp_path / "hf"))
    args = SimpleNamespace(
        data=SimpleNamespace(
            input_key="messages", output_key=None, apply_chat_template=True, tokenizer_chat_template=None
        )
    )
    dataset = SFTDataset(data["train"], tokenizer, 8192, SimpleNamespace(args=args), num_processors=1, multiturn=True)
    assert len(dataset) == len(conversations)
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    for index, conversation in enumerate(conversations):
        input_ids, _, loss_mask = dataset[index]
        ids, mask = input_ids[0].tolist(), loss_mask[0].tolist()
        answers = [m["content"] for m in conversation.messages[2::2]]
        ranges = dataset.response_ranges[index]
        assert len(ranges) == len(answers)
        for (start, stop), i, answer in zip(ranges, range(2, len(conversation.messages), 2), answers, strict=True):
            # before each trained answer: exactly the prompt the service sends for that turn
            assert tuple(ids[:start]) == chat_ids(tokenizer, conversation.messages[:i])
            assert tokenizer.decode(ids[start:stop]) == answer + "<|im_end|>"
            assert ids[stop - 1] == end
        trained = {p + 1 for p, m in enumerate(mask) if m}  # the loss at position p trains token p + 1
        assert trained == {t for start, stop in ranges for t in range(start, stop + 1)}


def test_the_messages_format_is_the_same_chat_alone(handful: list[CerItem], tmp_path: Path) -> None:
    conversations = list(build_conversations(handful, JudgeSFTConfig()))
    kinds = write_formats(conversations, tmp_path, "valid")
    assert sum(kinds.values()) == len(conversations)
    plain = [json.loads(line) for line in (tmp_path / "messages" / "valid.jsonl").read_text().splitlines()]
    rich = [json.loads(line) for line in (tmp_path / "openrlhf" / "valid.jsonl").read_text().splitlines()]
    assert [set(row) for row in plain] == [{"messages"}] * len(conversations)
    assert (
        [row["messages"] for row in plain] == [row["messages"] for row in rich] == [c.messages for c in conversations]
    )
    assert [row["id"] for row in rich] == [c.id for c in conversations]
    for row in plain:
        assert all(set(m) == {"role", "content"} for m in row["messages"])
        assert row["messages"][-1]["role"] == "assistant"


# --- the command --------------------------------------------------------------------------------------


def test_command_writes_each_split_in_both_formats_and_keeps_the_splits(tmp_path: Path) -> None:
    from unifireward.cli import app

    if not (ESCONV / "esconv_train.jsonl").exists():
        pytest.skip("ESConv is not available at ../shared/data/esconv")
    items_dir = tmp_path / "cer"
    for split, n in (("train", 3), ("valid", 2), ("test", 2)):
        derived = derive_split(load_split(ESCONV / f"esconv_{split}.jsonl")[:n], split, rounds_per_dialogue=2)
        lines = [json.dumps(r) for r in derived]
        if split == "valid":
            lines += ["{not json", json.dumps({**derived[0], "labels": {"steps": {}, "preference": "first"}})]
        (items_dir).mkdir(exist_ok=True)
        (items_dir / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
    out = tmp_path / "sft"
    result = CliRunner().invoke(
        app, ["data", "judge-sft", "--items", str(items_dir), "--out", str(out), "--modes", "unified,orm"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)["splits"]
    assert summary["valid"]["skipped"] == {"invalid_json": 1, "invalid_record": 1}
    for split in ("train", "valid", "test"):
        n = summary[split]["items"]
        assert summary[split]["conversations"] == {"unified": n, "unified/swapped": n, "orm": n, "orm/swapped": n}
        for name in ("openrlhf", "messages"):
            rows = (out / name / f"{split}.jsonl").read_text().splitlines()
            assert len(rows) == summary[split]["records"][name] == 4 * n
        ids = {
            json.loads(row)["id"].split("-")[0]
            for row in (out / "openrlhf" / f"{split}.jsonl").read_text().splitlines()
        }
        assert ids == {split}  # train stays train, valid valid, test test
    strict = CliRunner().invoke(app, ["data", "judge-sft", "--items", str(items_dir), "--out", str(out), "--strict"])
    assert strict.exit_code != 0 and "invalid_json" in strict.output


# --- garbage in ---------------------------------------------------------------------------------------

BASE: dict[str, Any] = {
    "id": "test-0000-001-00-gold",
    "split": "test",
    "dialogue_index": 0,
    "round_index": 1,
    "schema": "compeer",
    "history": [{"role": "seeker", "content": "I lost my job."}, {"role": "supporter", "content": "Oh no."}],
    "candidate": SCHEMAS["compeer"].example,
    "reference": "What happened?",
    "labels": {
        "steps": {"history_analysis": True, "emotional_state": False, "support_strategy": True},
        "preference": "second",
    },
    "corruption": "gold",
    "reply_source": "gold",
    "reference_source": "filler",
}
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


@st.composite
def broken_record(draw: st.DrawFn) -> str:
    """A record with fields dropped, replaced by any JSON, or its labels or history tampered with."""
    record = json.loads(json.dumps(BASE))
    for key in draw(st.lists(st.sampled_from(sorted(BASE)), max_size=3)):
        action = draw(st.sampled_from(["drop", "replace"]))
        if action == "drop":
            record.pop(key, None)
        else:
            record[key] = draw(JSON)
    if draw(st.booleans()):
        record["labels"] = {
            "steps": draw(st.dictionaries(st.text(max_size=20), JSON, max_size=4)),
            "preference": draw(JSON),
        }
    if draw(st.booleans()):
        record["history"] = draw(st.lists(st.dictionaries(st.sampled_from(["role", "content", "x"]), JSON), max_size=3))
    text = json.dumps(record)
    return text[: draw(st.integers(0, len(text)))] if draw(st.booleans()) else text


SURROGATES = st.text(st.characters(categories=["Cs"]) | st.characters(max_codepoint=127), min_size=1, max_size=8)
LINES = st.one_of(
    st.text(max_size=80),
    SURROGATES.map(lambda text: json.dumps({**BASE, "reference": text}, ensure_ascii=False)),
    JSON.map(json.dumps),
    broken_record(),
    st.just(json.dumps(BASE)),
    st.just('{"id": "x", "candidate": "\\ud800", "history": []}'),
    st.just(json.dumps({**BASE, "reference": "\\ud800 lone"}).replace("\\\\ud800", "\\ud800")),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(LINES, max_size=8))
def test_garbage_lines_are_skipped_and_counted_or_refused_clearly(lines: list[str]) -> None:
    lines = [line.replace("\n", " ") for line in lines]
    read = read_items(lines)
    assert len(read.items) + sum(read.skipped.values()) == sum(1 for line in lines if line.strip())
    assert set(read.skipped) <= {"invalid_json", "invalid_record", "invalid_text"}
    for conversation in build_conversations(read.items, JudgeSFTConfig()):  # what was read always renders
        json.dumps(conversation.openrlhf_row(), ensure_ascii=False).encode("utf-8")
    try:
        strict = read_items(lines, strict=True)
    except RecordError as exc:
        assert exc.reason in read.skipped and str(exc).startswith(f"line {exc.line}: {exc.reason}: ")
    else:
        assert not read.skipped and len(strict.items) == len(read.items)


def test_a_clear_error_names_the_line_and_the_field() -> None:
    lines = [json.dumps(BASE), json.dumps({k: v for k, v in BASE.items() if k != "reference"})]
    with pytest.raises(RecordError, match=r"^line 2: invalid_record: reference: Field required"):
        read_items(lines, strict=True)
    unlabelled = {**BASE, "labels": {"steps": {"history_analysis": True}, "preference": "equal"}}
    with pytest.raises(RecordError, match="without a gold verdict"):
        read_items([json.dumps(unlabelled)], strict=True)
    assert read_items(["", "  ", json.dumps(BASE)], limit=1).items[0].id == BASE["id"]


def test_a_file_with_bytes_that_are_not_utf8_skips_those_lines(tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl"
    good = json.dumps(BASE).encode()
    path.write_bytes(good + b"\n" + good.replace(b"What happened?", b"caf\xe9?") + b"\n\n" + good + b"\n")
    read = judge_sft.read_items_file(path)
    assert len(read.items) == 2 and read.skipped == {"invalid_text": 1}
    with pytest.raises(RecordError, match=r"^line 2: invalid_text: the line holds bytes that are not UTF-8$"):
        judge_sft.read_items_file(path, strict=True)
