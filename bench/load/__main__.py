"""A bounded load run against both services, as real processes on 127.0.0.1.

Starts the embedder and the reward service (the fake backends, slowed by ``--fake-delay`` per judge
batch so capacity is finite and known; or with ``--backends real`` the CPU defaults: classifier judge,
MiniLM embedder), warms them up with ``--warmup`` seconds of ``/v1/rewards`` (not counted), then loads
each endpoint in turn with locust (its own process) for ``--seconds``:

- ``/v1/rewards``: one GRPO group of ``--size`` outputs per request;
- ``/v1/judge``: ``--size`` candidates per request;
- ``/openrlhf/reward``: one sample per request, as OpenRLHF sends them, ``--size`` samples a group;
- ``/v1/embeddings``: ``--size`` texts per request (the embedder).

Then, with ``--overload`` (fake backends only), it restarts the reward service with a small queue and
offers ``/v1/rewards`` ``--overload-factor`` times its capacity (``--batch / --overload-delay`` items/s)
at a paced rate, counting the 429s and whether each carried ``Retry-After``. Fallbacks are read from
``/openrlhf/reward``'s ``extra_logs`` and from the reward service's ``/metrics``.

Prints a table and one JSON line.

    .venv/bin/python -m bench.load --seconds 20 --users 64
    .venv/bin/python -m bench.load --backends real --seconds 20 --users 16 --no-overload
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from bench.load.payloads import ENDPOINTS
from services.tools.processes import free_port, running

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Urls:
    reward: str
    embedder: str
    #: The services' process ids, for their CPU time.
    reward_pid: int = 0
    embedder_pid: int = 0


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def services(work: Path, real: bool, reward_env: dict[str, str], embedder_delay_s: float) -> Iterator[Urls]:
    """Both services on free loopback ports, ready; stopped by pid on the way out."""
    e_port, r_port = free_port(), free_port()
    urls = Urls(f"http://127.0.0.1:{r_port}", f"http://127.0.0.1:{e_port}")
    common = {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    embedder_env = {
        **common,
        "EMBEDDER_HOST": "127.0.0.1",
        "EMBEDDER_PORT": str(e_port),
        "EMBEDDER_LOG_LEVEL": "warning",
    }
    if not real:
        embedder_env |= {"EMBEDDER_BACKEND": "fake", "EMBEDDER_FAKE_DELAY_S": str(embedder_delay_s)}
    env = {
        **common,
        "REWARD_HOST": "127.0.0.1",
        "REWARD_PORT": str(r_port),
        "REWARD_EMBEDDER_URL": urls.embedder,
        "REWARD_LOG_LEVEL": "warning",
        "REWARD_BACKEND": "classifier" if real else "fake",
        # A group cut short by the end of a run must not be judged during the next one.
        "REWARD_COHORT_WAIT_S": "5",
        **reward_env,
    }
    python = sys.executable
    with (
        running([python, "-m", "embedder"], embedder_env, urls.embedder, work / "embedder.log", timeout_s=300) as e,
        running([python, "-m", "reward_server"], env, urls.reward, work / "reward.log", timeout_s=300) as r,
    ):
        yield Urls(urls.reward, urls.embedder, r.pid, e.pid)


_SAMPLE = re.compile(r"^(unifireward_[a-z_]+_(?:total|sum|count))(\{[^}]*\})? ([0-9.eE+-]+)$", re.MULTILINE)


def counters(url: str) -> dict[str, float]:
    """The reward service's counters and histogram sums and counts (``name{labels}`` -> value)."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    found = {name + (labels or ""): float(value) for name, labels, value in _SAMPLE.findall(text)}
    return {key: value for key, value in found.items() if "/metrics" not in key}  # scraping moves those


def settled(url: str, timeout_s: float = 60.0) -> dict[str, float]:
    """The counters once they stop moving: the run's requests cut short by its end are still being
    served, and their outcomes belong to this run, not the next."""
    deadline = time.monotonic() + timeout_s
    last = counters(url)
    while time.monotonic() < deadline:
        time.sleep(1.0)
        now = counters(url)
        if now == last:
            return now
        last = now
    return last


def delta(before: dict[str, float], after: dict[str, float], pattern: str) -> int:
    """How much the counters whose key contains ``pattern`` grew."""
    return int(sum(v - before.get(k, 0.0) for k, v in after.items() if pattern in k))


def swarm(
    host: str, endpoint: str, users: int, seconds: float, size: int, work: Path, rate: float = 0.0
) -> dict[str, Any]:
    """One locust run in its own process; its JSON result."""
    out = work / f"{endpoint}-{time.monotonic_ns()}.json"
    args = [sys.executable, "-m", "bench.load.swarm", "--host", host, "--endpoint", endpoint, "--users", str(users)]
    args += ["--seconds", str(seconds), "--size", str(size), "--rate", str(rate), "--out", str(out)]
    subprocess.run(args, check=True, cwd=ROOT, timeout=seconds + 240, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return dict(json.loads(out.read_text()))


def measured(
    urls: Urls, endpoint: str, users: int, seconds: float, size: int, work: Path, rate: float = 0.0
) -> dict[str, Any]:
    """A swarm run with the reward service's fallback and redundancy counters around it."""
    host = urls.reward if ENDPOINTS[endpoint].service == "reward" else urls.embedder
    pid = urls.reward_pid if ENDPOINTS[endpoint].service == "reward" else urls.embedder_pid
    before, cpu_before = counters(urls.reward), cpu_seconds(pid)
    result = swarm(host, endpoint, users, seconds, size, work, rate)
    result["service_cpu"] = round((cpu_seconds(pid) - cpu_before) / result["seconds"], 2)  # cores, on average
    after = settled(urls.reward)
    result["metrics_fallback_samples"] = delta(before, after, 'openrlhf_samples_total{outcome="fallback"')
    result["metrics_unweighted_groups"] = delta(before, after, "redundancy_requests_total") - delta(
        before, after, 'redundancy_requests_total{status="ok"'
    )
    batches = delta(before, after, "judge_batch_size_count")
    result["judge_batches"] = batches
    result["mean_judge_batch"] = round(delta(before, after, "judge_batch_size_sum") / batches, 1) if batches else None
    return result


def _fmt(value: float | None, unit: str = "") -> str:
    return "-" if value is None else f"{value:.3g}{unit}"


def table(results: list[dict[str, Any]]) -> Table:
    out = Table(title="Load (statuses: 0 = connection error)")
    columns = (
        "scenario",
        "endpoint",
        "users",
        "req/s/user",
        "requests",
        "sent req/s",
        "ok req/s",
        "items/s",
        "p50",
        "p99",
    )
    for column in columns:
        out.add_column(column, justify="right" if column not in ("scenario", "endpoint") else "left")
    for column in (
        "200",
        "429",
        "5xx",
        "other",
        "conn",
        "429+Retry-After",
        "fallback logs/metrics",
        "unweighted",
        "batch",
    ):
        out.add_column(column, justify="right")
    for r in results:
        s = {int(k): v for k, v in r["statuses"].items()}
        five = sum(v for k, v in s.items() if k >= 500)
        other = sum(v for k, v in s.items() if k not in (0, 200, 429) and k < 500)
        out.add_row(
            r["scenario"],
            r["path"],
            str(r["users"]),
            _fmt(r["rate_per_user"]) if r["rate_per_user"] else "closed",
            str(r["requests"]),
            _fmt(r["requests"] / r["seconds"]),
            _fmt(r["ok_per_s"]),
            _fmt(r["items_per_s"]),
            _fmt(r["p50_s"], " s"),
            _fmt(r["p99_s"], " s"),
            str(s.get(200, 0)),
            str(s.get(429, 0)),
            str(five),
            str(other),
            str(s.get(0, 0)),
            f"{r['retry_after_429s']}/{s.get(429, 0)}",
            f"{r['fallback_samples']}/{r['metrics_fallback_samples']}",
            str(r["metrics_unweighted_groups"]),
            _fmt(r["mean_judge_batch"]),
            _fmt(r["service_cpu"]),
        )
    return out


def main(
    seconds: float = typer.Option(20.0, min=1, max=120, help="Seconds of load per endpoint."),
    users: int = typer.Option(64, min=8, max=512, help="Concurrent users (a multiple of --size for openrlhf)."),
    size: int = typer.Option(8, min=1, max=64, help="Items per request; samples per group for openrlhf."),
    endpoints: str = typer.Option("rewards,judge,openrlhf,embeddings", help="Which endpoints, comma-separated."),
    backends: str = typer.Option("fake", help="fake (delayed fake backends) or real (classifier judge, MiniLM)."),
    fake_delay: float = typer.Option(0.1, min=0.0, help="Seconds the fake judge takes per batch."),
    embedder_fake_delay: float = typer.Option(0.02, min=0.0, help="Seconds the fake embedder takes per batch."),
    batch: int = typer.Option(32, min=1, help="REWARD_MAX_BATCH_SIZE: judge items per batch."),
    warmup: float = typer.Option(5.0, min=0, max=60, help="Seconds of /v1/rewards load before measuring, not counted."),
    overload: bool = typer.Option(True, help="Also run the overload scenario (fake backends)."),
    overload_factor: float = typer.Option(10.0, min=1.0, help="Offered load over capacity in the overload run."),
    overload_queue: int = typer.Option(32, min=1, help="REWARD_MAX_QUEUED_ITEMS of the overload run."),
    overload_delay: float = typer.Option(0.4, min=0.01, help="Seconds the fake judge takes per batch when overloaded."),
    overload_users: int = typer.Option(100, min=1, max=512, help="Users of the overload run (paced)."),
) -> None:
    """Load each endpoint in turn, then overload the reward service; print a table and a JSON line."""
    real = backends == "real"
    if backends not in ("fake", "real"):
        raise typer.BadParameter("--backends is fake or real")
    chosen = [e.strip() for e in endpoints.split(",") if e.strip()]
    if unknown := set(chosen) - set(ENDPOINTS):
        raise typer.BadParameter(f"unknown endpoints {sorted(unknown)}; known: {sorted(ENDPOINTS)}")
    console = Console(stderr=True)
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="load-") as tmp:
        work = Path(tmp)
        reward_env = {"REWARD_MAX_BATCH_SIZE": str(batch)}
        if not real:
            reward_env["REWARD_FAKE_DELAY_S"] = str(fake_delay)
        with services(work, real, reward_env, embedder_fake_delay) as urls:
            if warmup and chosen:
                # Ready is not warm: the first seconds of real load after start are slower (see docs/operations.md).
                console.log(f"warm-up: /v1/rewards, {warmup} s, not counted")
                measured(urls, "rewards", users, warmup, size, work)
            for endpoint in chosen:
                console.log(f"{endpoint}: {users} users, {seconds} s")
                result = measured(urls, endpoint, users, seconds, size, work)
                results.append({"scenario": "capacity", **result})
        if overload and not real:
            # A slower judge than the capacity runs': ten times its capacity stays within what locust can send.
            capacity_rps = batch / overload_delay / size
            rate = overload_factor * capacity_rps / overload_users
            reward_env |= {"REWARD_MAX_QUEUED_ITEMS": str(overload_queue), "REWARD_FAKE_DELAY_S": str(overload_delay)}
            console.log(f"overload: capacity {capacity_rps:.3g} req/s, offered {overload_factor:g}x")
            with services(work, real, reward_env, embedder_fake_delay) as urls:
                result = measured(urls, "rewards", overload_users, seconds, size, work, rate)
                results.append(
                    {"scenario": f"overload {overload_factor:g}x", "capacity_req_per_s": capacity_rps, **result}
                )
    Console(width=max(Console().width, 200)).print(table(results))
    config = {
        "backends": backends,
        "seconds": seconds,
        "users": users,
        "size": size,
        "batch": batch,
        "fake_delay_s": None if real else fake_delay,
        "embedder_fake_delay_s": None if real else embedder_fake_delay,
        "warmup_s": warmup,
        "overload_queue": overload_queue,
        "overload_delay_s": overload_delay,
        "overload_users": overload_users,
    }
    print(json.dumps({"config": config, "results": results}))


if __name__ == "__main__":
    typer.run(main)
