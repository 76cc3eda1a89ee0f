"""A tiny Qwen2 chat model with random weights, built on the spot for the vLLM tests and benchmarks.

vLLM needs a real Hugging Face model directory: a config, safetensors weights, a tokenizer and a chat
template. None can be downloaded here, so this module trains a small byte-level BPE tokenizer on the
judge's own prompts, wraps it with a ChatML-like template, and saves a 2-layer Qwen2 (hidden 128,
4 heads of 32: vLLM's CPU attention needs a head size of at least 32) with seeded random weights.
Its answers are noise, which is the point: structured outputs must make even noise parse.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from services.core.candidate import parse_candidate
from services.core.judge_prompts import SYSTEM_PROMPT, build_task, judge_messages
from services.core.schemas import SCHEMAS

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def _training_text() -> list[str]:
    """A few KB of the text the model will read: the judge's prompts and the schemas' examples."""
    from services.core.types import DialogueMessage

    lines = [SYSTEM_PROMPT]
    for schema in SCHEMAS.values():
        candidate = parse_candidate(schema.example, schema)
        history = [
            DialogueMessage("seeker", "I lost my job and I feel anxious."),
            DialogueMessage("supporter", "What happened?"),
        ]
        task = build_task(schema, "unified", history, candidate, "That sounds hard. Have you talked to anyone?")
        lines += [m["content"] for m in judge_messages(task, ["It fits.\nVerdict: True"] * len(task.turns))]
        lines.append(schema.example)
    lines.append("Verdict: True\nVerdict: False\nPreference: A\nPreference: B\nPreference: C\nPreference: D")
    return lines


def train_tokenizer(vocab_size: int, extra_text: Iterable[str] = ()) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer trained on the judge's own prompts, with the ChatML template.

    ``extra_text`` is trained on too: a model fine-tuned on whole judge conversations (dialogues, gold
    answers) reads them in far fewer tokens when its merges come from them.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator([*_training_text(), *extra_text], trainer=trainer)
    # After the bytes and merges, so that the lowest-numbered tokens are single characters (see
    # uniform_logits; xgrammar lets special tokens, which decode to nothing, into a rationale).
    bpe.add_special_tokens(SPECIAL_TOKENS)
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        chat_template=CHAT_TEMPLATE,
        model_max_length=8192,
    )


def build_tiny_model(
    directory: Path,
    *,
    layers: int = 2,
    vocab_size: int = 1024,
    seed: int = 0,
    uniform_logits: bool = False,
    extra_text: Iterable[str] = (),
) -> Path:
    """Write a random-weight Qwen2 chat model and its tokenizer to ``directory``.

    Args:
        directory: where to save (created if needed).
        layers: decoder layers.
        vocab_size: BPE vocabulary size to train (the 256 bytes and the special tokens included).
        seed: torch seed of the weights.
        uniform_logits: zero the output layer (untied from the embeddings), so every token is equally
            likely and greedy decoding writes the lowest-numbered token its grammar allows, one
            character at a time: every structured answer is as long as its regex allows, whatever
            the prompt. Benchmarks that compare ways of asking want that; a random model's answers
            differ in length with the prompt.
        extra_text: more text to train the tokenizer on (:func:`train_tokenizer`).

    Returns:
        ``directory``, ready for ``vllm`` (``REWARD_MODEL``) or ``transformers``.
    """
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer(vocab_size, extra_text)
    tokenizer.save_pretrained(directory)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=8192,
        tie_word_embeddings=not uniform_logits,
        bos_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    if uniform_logits:
        with torch.no_grad():
            model.lm_head.weight.zero_()
    model.save_pretrained(directory, safe_serialization=True)
    return directory
