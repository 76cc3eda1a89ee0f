"""Sentence-encoder backends measured side by side in one run: torch against ONNX Runtime (fp32, fused, qint8).

The packaged all-MiniLM-L6-v2 is loaded the way the embedding service loads it
(``services.models.sentence_encoder.load_sentence_model``: offline, CPU, ``--max-seq-length`` tokens, 256 as in
``EmbedderSettings``). Every backend runs through the same ``SentenceTransformer.encode(texts,
batch_size=b, normalize_embeddings=True, convert_to_numpy=True)`` call on the same ESConv test-split
utterances, so tokenization, pooling and normalization are identical; only the transformer's forward pass
differs:

- ``torch``: the model as the service loads it;
- ``onnx``: the transformer exported with ``torch.onnx`` (fp32) and run by ONNX Runtime on CPU;
- ``onnx-o3``: the same graph after ONNX Runtime's BERT fusions (``onnxruntime.transformers.optimizer``);
- ``onnx-qint8``: the fp32 graph with dynamically quantized int8 weights (``onnxruntime.quantization``).

Why not ``SentenceTransformer(path, backend="onnx")``: it needs ``optimum-onnx``, whose releases
(<= 0.1.0) require ``transformers<4.58`` and fail to import against the project's transformers 5.x. This
script therefore exports the graph itself (cached under ``--onnx-dir``) and swaps ONNX Runtime in for the
transformer's forward pass.

The machine is shared, so timings are noisy: repetitions are interleaved (every backend at every batch
size in each repetition, the backend order rotated each time), and the table reports medians and the
median of the per-repetition ratios to torch. The agreement of each ONNX backend with torch (cosine of
the normalized embeddings of every text) is printed first.

Extra dependencies (not in the project's environment; the ONNX backends are skipped when missing)::

    .venv/bin/pip install onnxruntime onnx

Run from the repository root::

    .venv/bin/python bench/embedder_backends.py --batch-sizes 1,8,32,128 --repeats 5
    .venv/bin/python bench/embedder_backends.py --backends torch,onnx --texts 256 --repeats 3
"""

from __future__ import annotations

import importlib.util
import os
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from services.data.esconv import dialogue_messages, load_split, split_path  # noqa: E402
from services.models.sentence_encoder import default_encoder_path, load_sentence_model  # noqa: E402

ESCONV_DIR = ROOT.parent / "shared" / "data" / "esconv"
DEFAULT_ONNX_DIR = Path(os.environ.get("TMPDIR", "/tmp")) / "embedder_backends_onnx"
ONNX_BACKENDS = ("onnx", "onnx-o3", "onnx-qint8")
ALL_BACKENDS = ("torch", *ONNX_BACKENDS)
ONNX_FILES = {"onnx": "model.onnx", "onnx-o3": "model_o3.onnx", "onnx-qint8": "model_qint8.onnx"}


def esconv_utterances(data_dir: Path, n: int) -> list[str]:
    """The first ``n`` distinct non-empty utterances of the ESConv test split, in file order.

    Args:
        data_dir: the ESConv directory (with ``esconv_test.jsonl``).
        n: how many texts to return.

    Returns:
        Up to ``n`` texts (fewer only when the split has fewer distinct utterances).
    """
    seen: dict[str, None] = {}
    for dialogue in load_split(split_path(data_dir, "test")):
        for message in dialogue_messages(dialogue):
            if message.content:
                seen.setdefault(message.content, None)
                if len(seen) >= n:
                    return list(seen)
    return list(seen)


def onnx_missing() -> list[str]:
    """The names of the packages the ONNX backends need that are not installed."""
    return [name for name in ("onnxruntime", "onnx") if importlib.util.find_spec(name) is None]


def export_onnx(model_path: Path, out_dir: Path, wanted: Sequence[str]) -> dict[str, Path]:
    """Write the ONNX graphs the ``wanted`` backends need, unless they are already in ``out_dir``.

    The fp32 graph is exported from the transformer alone (eager attention, dynamic batch and sequence
    axes, output ``last_hidden_state``); pooling and normalization stay in sentence-transformers.

    Args:
        model_path: the local model directory.
        out_dir: where the ``.onnx`` files are cached.
        wanted: backend names among ``ONNX_BACKENDS``.

    Returns:
        The graph file of each wanted backend.
    """
    import torch
    from transformers import AutoModel, AutoTokenizer

    out_dir.mkdir(parents=True, exist_ok=True)
    fp32 = out_dir / ONNX_FILES["onnx"]
    if not fp32.exists():
        tokenizer = AutoTokenizer.from_pretrained(model_path)
        model = AutoModel.from_pretrained(model_path, attn_implementation="eager").eval()
        sample = tokenizer(["a short text", "a somewhat longer text to pad against"], padding=True, return_tensors="pt")
        names = [name for name in ("input_ids", "attention_mask", "token_type_ids") if name in sample]

        class _Forward(torch.nn.Module):
            def __init__(self, inner: torch.nn.Module) -> None:
                super().__init__()
                self.inner = inner

            def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
                return self.inner(**dict(zip(names, tensors, strict=True))).last_hidden_state

        axes = {name: {0: "batch_size", 1: "sequence_length"} for name in [*names, "last_hidden_state"]}
        with torch.no_grad():
            torch.onnx.export(
                _Forward(model),
                tuple(sample[name] for name in names),
                str(fp32),
                input_names=names,
                output_names=["last_hidden_state"],
                dynamic_axes=axes,
                opset_version=17,
                dynamo=False,
            )
    paths = {"onnx": fp32}
    if "onnx-o3" in wanted:
        paths["onnx-o3"] = out_dir / ONNX_FILES["onnx-o3"]
        if not paths["onnx-o3"].exists():
            from onnxruntime.transformers.optimizer import optimize_model

            config = _hf_config(model_path)
            fused = optimize_model(
                str(fp32),
                model_type="bert",
                num_heads=config.num_attention_heads,
                hidden_size=config.hidden_size,
                opt_level=1,
            )
            fused.save_model_to_file(str(paths["onnx-o3"]))
    if "onnx-qint8" in wanted:
        paths["onnx-qint8"] = out_dir / ONNX_FILES["onnx-qint8"]
        if not paths["onnx-qint8"].exists():
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantize_dynamic(str(fp32), str(paths["onnx-qint8"]), weight_type=QuantType.QInt8, per_channel=True)
    return {name: path for name, path in paths.items() if name in wanted}


def _hf_config(model_path: Path) -> Any:
    """The transformers config of the model directory."""
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(model_path)


def onnx_encoder(model_path: Path, graph: Path, threads: int, max_seq_length: int) -> Any:
    """A ``SentenceTransformer`` loaded like the project's whose transformer forward runs in ONNX Runtime.

    Args:
        model_path: the local model directory (tokenizer, pooling, config).
        graph: the ``.onnx`` file of the transformer.
        threads: ONNX Runtime intra-op threads.
        max_seq_length: tokens per text.

    Returns:
        The model; ``encode`` works as usual.
    """
    import onnxruntime as ort
    import torch
    from transformers.modeling_outputs import BaseModelOutput

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Idle ONNX Runtime threads would otherwise spin and take CPU from the torch runs interleaved with them.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
    inputs = [node.name for node in session.get_inputs()]

    class OrtTransformer(torch.nn.Module):
        """Stands in for the Hugging Face model inside sentence-transformers' ``Transformer`` module."""

        def __init__(self, config: Any) -> None:
            super().__init__()
            self.config = config
            self.device = torch.device("cpu")

        def forward(self, **features: Any) -> BaseModelOutput:
            feeds = {name: features[name].numpy() for name in inputs}
            (hidden,) = session.run(["last_hidden_state"], feeds)
            return BaseModelOutput(last_hidden_state=torch.from_numpy(hidden))

    model = load_sentence_model(model_path, "cpu", max_seq_length)
    transformer = model[0]
    transformer.model = OrtTransformer(transformer.model.config)
    return model


def encode(model: Any, texts: list[str], batch_size: int) -> np.ndarray:
    """The service's encode call: unit-length float32 embeddings, no progress bar."""
    return np.asarray(
        model.encode(
            texts,
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        ),
        dtype=np.float32,
    )


def agreement(reference: np.ndarray, other: np.ndarray) -> tuple[float, float]:
    """Minimum and mean cosine between matching rows of two unit-normalized embedding matrices."""
    cosines = np.sum(reference * other, axis=1)
    return float(cosines.min()), float(cosines.mean())


def measure(
    models: dict[str, Any], texts: list[str], batch_sizes: Sequence[int], repeats: int
) -> dict[tuple[str, int], list[float]]:
    """Texts per second of every backend at every batch size, interleaved.

    Each repetition runs every (batch size, backend) pair once over all ``texts``; the backend order is
    rotated from one repetition to the next so that no backend always runs first or last.

    Args:
        models: backend name -> model.
        texts: the texts encoded in each run.
        batch_sizes: ``encode`` batch sizes.
        repeats: repetitions.

    Returns:
        (backend, batch size) -> texts per second of each repetition.
    """
    names = list(models)
    rates: dict[tuple[str, int], list[float]] = {(name, b): [] for name in names for b in batch_sizes}
    for repeat in range(repeats):
        order = names[repeat % len(names) :] + names[: repeat % len(names)]
        for batch_size in batch_sizes:
            for name in order:
                start = time.perf_counter()
                encode(models[name], texts, batch_size)
                rates[(name, batch_size)].append(len(texts) / (time.perf_counter() - start))
    return rates


def parse_ints(text: str) -> list[int]:
    """``"1,8,32"`` -> ``[1, 8, 32]``."""
    return [int(part) for part in text.split(",") if part.strip()]


def main(
    batch_sizes: Annotated[str, typer.Option(help="Comma-separated encode batch sizes.")] = "1,8,32,128",
    repeats: Annotated[int, typer.Option(min=1, help="Interleaved repetitions per backend and batch size.")] = 5,
    texts: Annotated[int, typer.Option(min=1, help="How many ESConv test utterances to encode per run.")] = 512,
    backends: Annotated[str, typer.Option(help="Comma-separated, among " + ", ".join(ALL_BACKENDS))] = ",".join(
        ALL_BACKENDS
    ),
    threads: Annotated[int, typer.Option(min=1, help="torch and ONNX Runtime intra-op threads (same for all).")] = 2,
    max_seq_length: Annotated[int, typer.Option(min=8, help="Tokens per text (the service's default).")] = 256,
    data_dir: Annotated[Path, typer.Option(help="ESConv directory (esconv_test.jsonl).")] = ESCONV_DIR,
    onnx_dir: Annotated[Path, typer.Option(help="Cache for the exported ONNX graphs.")] = DEFAULT_ONNX_DIR,
) -> None:
    """Print texts/s of each backend at each batch size, and the ratios to torch."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(threads)
    sizes = parse_ints(batch_sizes)
    wanted = [name.strip() for name in backends.split(",") if name.strip()]
    unknown = sorted(set(wanted) - set(ALL_BACKENDS))
    if unknown:
        raise typer.BadParameter(f"unknown backends {unknown}; choose among {list(ALL_BACKENDS)}")
    if "torch" not in wanted:
        wanted.insert(0, "torch")
    if missing := onnx_missing():
        skipped = [name for name in wanted if name in ONNX_BACKENDS]
        if skipped:
            names = ", ".join(skipped)
            print(f"skipping {names}: {' and '.join(missing)} not installed (pip install onnxruntime onnx)")
        wanted = [name for name in wanted if name not in ONNX_BACKENDS]

    corpus = esconv_utterances(data_dir, texts)
    model_path = default_encoder_path()
    models: dict[str, Any] = {"torch": load_sentence_model(model_path, "cpu", max_seq_length)}
    onnx_wanted = [name for name in wanted if name in ONNX_BACKENDS]
    if onnx_wanted:
        graphs = export_onnx(model_path, onnx_dir, onnx_wanted)
        for name in onnx_wanted:
            models[name] = onnx_encoder(model_path, graphs[name], threads, max_seq_length)

    words = [len(text.split()) for text in corpus]
    tokens = [len(ids) for ids in models["torch"].tokenizer(corpus)["input_ids"]]
    print(
        f"{len(corpus)} ESConv test utterances: median {statistics.median(words):.0f} words, "
        f"median {statistics.median(tokens):.0f} tokens, max {max(tokens)}, "
        f"{sum(t > max_seq_length for t in tokens)} over {max_seq_length} tokens (cut)"
    )
    versions = {"torch": torch.__version__}
    versions.update(_versions(["sentence_transformers", "transformers", "onnxruntime", "onnx"]))
    print("versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + f"; threads {threads}")

    reference = encode(models["torch"], corpus, 32)
    for name in onnx_wanted:
        low, mean = agreement(reference, encode(models[name], corpus, 32))
        print(f"agreement {name} vs torch: cosine min {low:.6f}, mean {mean:.6f}")
    for model in models.values():  # warm-up at every batch size
        for batch_size in sizes:
            encode(model, corpus[: max(batch_size, 8)], batch_size)

    rates = measure(models, corpus, sizes, repeats)
    print(f"\ntexts/s, median of {repeats} interleaved repetitions over {len(corpus)} texts")
    header = f"{'batch':>5}" + "".join(f"{name:>12}" for name in models)
    header += "".join(f"{name + '/torch':>18}" for name in models if name != "torch")
    print(header)
    for batch_size in sizes:
        torch_rates = rates[("torch", batch_size)]
        row = f"{batch_size:>5}" + "".join(f"{statistics.median(rates[(name, batch_size)]):>12.1f}" for name in models)
        for name in models:
            if name == "torch":
                continue
            paired = [other / base for other, base in zip(rates[(name, batch_size)], torch_rates, strict=True)]
            row += f"{statistics.median(paired):>12.2f}x ±{_spread(paired):.2f}"
        print(row)
    print("ratio: median of per-repetition ratios; ± half the range of those ratios")


def _versions(modules: Sequence[str]) -> dict[str, str]:
    """Installed versions of the importable ``modules``."""
    found: dict[str, str] = {}
    for module in modules:
        if importlib.util.find_spec(module) is not None:
            found[module] = str(getattr(__import__(module), "__version__", "?"))
    return found


def _spread(values: Sequence[float]) -> float:
    """Half the range of ``values``."""
    return (max(values) - min(values)) / 2


if __name__ == "__main__":
    typer.run(main)
