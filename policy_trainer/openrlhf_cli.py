"""OpenRLHF's own argument parser and checks, run on a command line without starting a training.

OpenRLHF 0.11.2 declares the flags of its PPO/GRPO trainer, and the checks that tie them together, inside
the ``if __name__ == "__main__":`` block of ``openrlhf/cli/train_ppo_ray.py``; the module's top-level
imports (ray, deepspeed, and flash-attn through the trainer, which a CPU machine cannot import) are only
needed to train. So the block is read with :mod:`ast` and run as written, with ``sys.argv`` set to the
command line and a ``train`` that keeps the parsed arguments instead of training. The module's
standard-library imports run as written too; what the block imports from ``openrlhf`` itself
(``hierarchize``) is loaded from its own file, because importing the ``openrlhf.utils`` package imports
torch and transformers (~10 s) for nothing.

This is how a launcher checks a command with exactly the parser that will read it on the cluster, with no
second list of OpenRLHF's flags to drift from the real one.

>>> issubclass(OpenRLHFArgsError, OpenRLHFError) and issubclass(OpenRLHFNotInstalledError, OpenRLHFError)
True
"""

from __future__ import annotations

import ast
import contextlib
import functools
import importlib.util
import io
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import CodeType, SimpleNamespace
from typing import Any

#: The module ``python -m`` runs on the cluster.
TRAINER_MODULE = "openrlhf.cli.train_ppo_ray"
INSTALL_HINT = "`make install-train` installs it (docs/training.md lists what a GPU node installs)"


class OpenRLHFError(Exception):
    """Base of every failure to read a command line with OpenRLHF's parser."""


class OpenRLHFNotInstalledError(OpenRLHFError):
    """OpenRLHF is not importable in this environment."""


class OpenRLHFArgsError(OpenRLHFError):
    """OpenRLHF's parser or one of its checks refused the command line.

    Attributes:
        message: what OpenRLHF said (the parser's ``error:`` line, or the failed check's message).
    """

    def __init__(self, message: str) -> None:
        super().__init__(f"OpenRLHF refused the command line: {message}")
        self.message = message


@dataclass(frozen=True)
class ParsedArgs:
    """What OpenRLHF made of a command line.

    Attributes:
        args: the nested namespace ``train(args)`` would get (``args.rollout.n_samples_per_prompt``...).
        notes: what OpenRLHF printed while checking it (its ``[Warning]`` and ``Recommend`` lines).
    """

    args: SimpleNamespace
    notes: list[str]


def module_file(module: str) -> Path:
    """The source file of an ``openrlhf`` module, found without importing any of its packages.

    Raises:
        OpenRLHFNotInstalledError: OpenRLHF is not installed, or has no such file.
    """
    spec = importlib.util.find_spec(module.split(".")[0])
    if spec is None or not spec.submodule_search_locations:
        raise OpenRLHFNotInstalledError(f"OpenRLHF is not installed in this environment: {INSTALL_HINT}")
    path = Path(next(iter(spec.submodule_search_locations)), *module.split(".")[1:]).with_suffix(".py")
    if not path.is_file():
        raise OpenRLHFNotInstalledError(f"{path} is missing: this OpenRLHF is not 0.11.2; {INSTALL_HINT}")
    return path


def _is_main_guard(node: ast.stmt) -> bool:
    return isinstance(node, ast.If) and ast.unparse(node.test) in ("__name__ == '__main__'", "'__main__' == __name__")


def _is_stdlib_import(node: ast.stmt) -> bool:
    if isinstance(node, ast.Import):
        return all(alias.name.split(".")[0] in sys.stdlib_module_names for alias in node.names)
    return isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in sys.stdlib_module_names


def _load_standalone(module: str) -> dict[str, Any]:
    """Run one ``openrlhf`` module's file alone (not its packages' ``__init__``) and return its globals."""
    spec = importlib.util.spec_from_file_location(
        f"_openrlhf_standalone_{module.replace('.', '_')}", module_file(module)
    )
    assert spec is not None and spec.loader is not None
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return vars(loaded)


class _OwnImports(ast.NodeTransformer):
    """Replaces ``from openrlhf.x import name`` in the block by names loaded from that file alone."""

    def __init__(self) -> None:
        self.names: dict[str, Any] = {}

    def visit_ImportFrom(self, node: ast.ImportFrom) -> ast.stmt:
        if node.level or not (node.module or "").startswith("openrlhf."):
            return node
        assert node.module is not None
        loaded = _load_standalone(node.module)
        for alias in node.names:
            self.names[alias.asname or alias.name] = loaded[alias.name]
        return ast.copy_location(ast.Pass(), node)


@functools.lru_cache(maxsize=4)
def _compiled(path: Path) -> tuple[CodeType, CodeType, dict[str, Any]]:
    """The module's standard-library imports, its main block, and the names the block imports from openrlhf."""
    tree = ast.parse(path.read_text(), filename=str(path))
    block = next((node for node in tree.body if _is_main_guard(node)), None)
    if not isinstance(block, ast.If):
        raise OpenRLHFError(f"{path} has no `if __name__ == '__main__':` block; this reader knows OpenRLHF 0.11.2")
    imports = ast.Module(body=[node for node in tree.body if _is_stdlib_import(node)], type_ignores=[])
    own = _OwnImports()
    body = ast.fix_missing_locations(own.visit(ast.Module(body=block.body, type_ignores=[])))
    return compile(imports, str(path), "exec"), compile(body, str(path), "exec"), own.names


def _parser_error(stderr: str, code: object) -> str:
    """The ``prog: error: ...`` part of what argparse wrote (its usage line lists all 150 flags)."""
    lines = stderr.strip().splitlines()
    start = next((i for i, line in enumerate(lines) if ": error: " in line), None)
    if start is not None:
        return "\n".join(lines[start:]).split(": error: ", 1)[1]
    return stderr.strip() or f"the parser exited with status {code}"


def run_openrlhf_parser(argv: Sequence[str], module: str = TRAINER_MODULE) -> ParsedArgs:
    """Read ``argv`` (the flags after ``python -m openrlhf.cli.train_ppo_ray``) as OpenRLHF would.

    Not thread-safe: ``sys.argv`` is swapped while OpenRLHF's block runs.

    Args:
        argv: the flags, e.g. ``["--rollout.n_samples_per_prompt", "4", ...]``.
        module: the OpenRLHF command whose ``__main__`` block reads them, e.g. ``openrlhf.cli.train_sft``.

    Returns:
        The namespace after OpenRLHF's checks and normalisation (``reward.remote_url`` becomes a list,
        ``"agent"`` with an agent executor), and what OpenRLHF printed.

    Raises:
        OpenRLHFNotInstalledError: OpenRLHF is not installed.
        OpenRLHFArgsError: the parser (an unknown flag, a bad value) or a check (an ``assert``) refused it.
        OpenRLHFError: the block could not be run here (an OpenRLHF release this reader does not know).
    """
    path = module_file(module)
    imports, block, own_names = _compiled(path)
    captured: list[SimpleNamespace] = []
    namespace: dict[str, Any] = {"__name__": "__openrlhf_args__", "__file__": str(path), **own_names}
    exec(imports, namespace)
    namespace["train"] = captured.append
    stdout, stderr = io.StringIO(), io.StringIO()
    saved_argv = sys.argv
    sys.argv = [str(path), *argv]
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            exec(block, namespace)
    except SystemExit as exc:
        raise OpenRLHFArgsError(_parser_error(stderr.getvalue(), exc.code)) from None
    except AssertionError as exc:
        raise OpenRLHFArgsError(str(exc) or "a check failed without a message") from None
    except Exception as exc:
        raise OpenRLHFError(f"OpenRLHF's argument block failed here: {type(exc).__name__}: {exc}") from exc
    finally:
        sys.argv = saved_argv
    if len(captured) != 1:
        raise OpenRLHFError(f"OpenRLHF's argument block called train() {len(captured)} times, not once")
    notes = [line for line in (stdout.getvalue() + stderr.getvalue()).splitlines() if line.strip()]
    return ParsedArgs(captured[0], notes)


def parse_openrlhf_args(argv: Sequence[str]) -> SimpleNamespace:
    """The namespace OpenRLHF's ``train(args)`` would get for ``argv``; see :func:`run_openrlhf_parser`."""
    return run_openrlhf_parser(argv).args
