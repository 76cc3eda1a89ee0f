"""Run both services as child processes on one host until interrupted (``unifireward up``, ``make run``).

The embedder and the reward service start together, each with its own ``EMBEDDER_*``/``REWARD_*``
settings; the reward service is pointed at this embedder unless ``REWARD_EMBEDDER_URL`` says
otherwise. When either child exits, or on SIGINT/SIGTERM, both are stopped by pid (SIGTERM, then
SIGKILL after a grace period). On Kubernetes or with docker compose each service runs alone instead.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import FrameType

from services.tools.processes import stop_processes
from services.tools.readiness import wait_until_ready

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServiceSpec:
    """One child: its name, module (run with ``python -m``) and base URL."""

    name: str
    module: str
    url: str


def _url(env: Mapping[str, str], prefix: str, default_port: int) -> str:
    host = env.get(f"{prefix}HOST", "127.0.0.1")
    port = env.get(f"{prefix}PORT", str(default_port))
    return f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"


def plan(env: Mapping[str, str]) -> tuple[list[ServiceSpec], dict[str, str]]:
    """The two services and the environment the children get.

    Args:
        env: the environment to start from (``os.environ``).

    Returns:
        The specs (embedder first) and the children's environment, with ``REWARD_EMBEDDER_URL`` set to
        this embedder when not given.

    >>> specs, child_env = plan({"EMBEDDER_PORT": "9001"})
    >>> [s.url for s in specs], child_env["REWARD_EMBEDDER_URL"]
    (['http://127.0.0.1:9001', 'http://127.0.0.1:8000'], 'http://127.0.0.1:9001')
    """
    embedder = ServiceSpec("embedder", "embedder", _url(env, "EMBEDDER_", 8001))
    reward = ServiceSpec("reward service", "reward_server", _url(env, "REWARD_", 8000))
    child_env = {**env, "REWARD_EMBEDDER_URL": env.get("REWARD_EMBEDDER_URL", embedder.url)}
    return [embedder, reward], child_env


def run(env: Mapping[str, str] | None = None, ready_timeout_s: float = 300.0, grace_s: float = 30.0) -> int:
    """Start both services, report when they are ready, and wait until told to stop.

    Args:
        env: the environment (``os.environ`` when None).
        ready_timeout_s: how long each service may take to load.
        grace_s: how long children get to exit after SIGTERM (above their own ``shutdown_timeout_s``, 25 s).

    Returns:
        0 after a requested stop; 1 when a service failed to start or exited on its own.
    """
    specs, child_env = plan(dict(os.environ if env is None else env))
    stopping = False

    procs: list[subprocess.Popen[bytes]] = []

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for proc in procs:  # children still loading stop too, which ends the readiness wait
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    procs += [subprocess.Popen([sys.executable, "-m", spec.module], env=child_env) for spec in specs]
    try:
        for spec, proc in zip(specs, procs, strict=True):
            logger.info("started the %s (pid %d) on %s", spec.name, proc.pid, spec.url)
        for spec, proc in zip(specs, procs, strict=True):
            if not wait_until_ready(spec.url, timeout_s=ready_timeout_s, process=proc):
                if stopping:
                    return 0
                logger.error("the %s did not become ready on %s", spec.name, spec.url)
                return 1
            logger.info("the %s is ready on %s", spec.name, spec.url)
        while not stopping:
            if any(proc.poll() is not None for proc in procs):
                logger.error("a service exited on its own; stopping the other")
                return 1
            time.sleep(0.2)
        return 0
    finally:
        stop_processes(procs, grace_s)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
