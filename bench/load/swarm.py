"""One bounded locust run against one endpoint, in its own process (locust patches the standard
library with gevent, which must not meet the caller's asyncio): writes what it saw as JSON.

    python -m bench.load.swarm --host http://127.0.0.1:8000 --endpoint rewards --users 64 --seconds 20 --out r.json

Every answer is counted by status (``0`` is a connection error); the latency percentiles are of the
200 answers; a 429 is counted as carrying ``Retry-After`` when the header is a positive integer; a
200 of ``/openrlhf/reward`` adds its ``extra_logs.fallback`` flags.
"""

from __future__ import annotations

import itertools
import json
import random
import time
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import gevent
import typer
from locust import FastHttpUser, constant, constant_throughput, task
from locust.env import Environment

from bench.load.payloads import ENDPOINTS


def percentile(values: list[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) of ``values`` by the nearest rank; None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def main(
    out: Annotated[Path, typer.Option(help="Where the JSON result goes.")],
    host: str = typer.Option(..., help="Base URL of the service."),
    endpoint: str = typer.Option(..., help="One of " + ", ".join(ENDPOINTS) + "."),
    users: int = typer.Option(64, min=1, help="Concurrent users."),
    seconds: float = typer.Option(20.0, min=1, help="How long the load lasts."),
    max_requests: int = typer.Option(20_000, min=1, help="Stop after this many requests, whichever comes first."),
    rate: float = typer.Option(0.0, min=0, help="Requests/s per user (open pacing); 0: each user sends when answered."),
    size: int = typer.Option(8, min=1, help="Items per request (for openrlhf: samples per GRPO group)."),
    api_key: str = typer.Option("", help="Bearer key, if the service has keys."),
) -> None:
    """Run the load and write the result."""
    spec = ENDPOINTS[endpoint]
    counter = itertools.count()
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    seen = {"retry_after": 0, "fallback": 0, "samples": 0, "errors": Counter[str]()}
    examples: dict[str, str] = {}
    retry_after_values: Counter[str] = Counter()
    redundancy: Counter[str] = Counter()
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    class Load(FastHttpUser):
        wait_time = constant_throughput(rate) if rate else constant(0)
        # A request waits as long as the service makes it (an OpenRLHF sample waits for its siblings).
        network_timeout = 200.0
        connection_timeout = 10.0

        def on_start(self) -> None:
            if rate:  # spread the users over one period, or paced users all send at once, every period
                gevent.sleep(random.uniform(0, 1 / rate))

        @task
        def post(self) -> None:
            n = next(counter)
            if n >= max_requests:
                gevent.spawn(runner.quit)
                return
            self.client.post(spec.path, json=spec.body(n, size), headers=headers, name=endpoint)

    def on_request(response: Any, response_time: float, exception: Any, **_: Any) -> None:
        status = getattr(response, "status_code", 0) or 0
        statuses[status] += 1
        if status == 200:
            latencies.append(response_time / 1000)
            if endpoint == "rewards":
                for group in response.json()["groups"]:
                    redundancy[group["redundancy"]] += 1
                    if group["redundancy"] != "ok" and group["redundancy"] not in examples:
                        examples[group["redundancy"]] = str(group["redundancy_error"])[:300]
            if endpoint == "openrlhf":
                logs = response.json()["extra_logs"]
                seen["samples"] += len(logs["fallback"])
                seen["fallback"] += int(sum(logs["fallback"]))
        elif status == 429:
            value = (response.headers or {}).get("Retry-After") or ""
            seen["retry_after"] += int(value.isdigit() and int(value) > 0)
            retry_after_values[value or "(none)"] += 1
        if status != 200 and exception is not None:
            kind = type(exception).__name__ if status == 0 else str(status)
            seen["errors"][kind] += 1
            if kind not in examples:  # the first answer of each kind, to read what went wrong
                examples[kind] = (getattr(response, "text", None) or repr(exception))[:300]

    env = Environment(user_classes=[Load], host=host)
    env.events.request.add_listener(on_request)
    runner = env.create_local_runner()
    started = time.monotonic()
    runner.start(users, spawn_rate=users)
    gevent.spawn_later(seconds, runner.quit)
    runner.greenlet.join()
    elapsed = time.monotonic() - started
    ok = statuses[200]
    result = {
        "endpoint": endpoint,
        "path": spec.path,
        "users": users,
        "rate_per_user": rate,
        "seconds": round(elapsed, 2),
        "requests": sum(statuses.values()),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "ok_per_s": round(ok / elapsed, 2),
        "items_per_s": round(ok * spec.items(size) / elapsed, 2),
        "p50_s": percentile(latencies, 0.50),
        "p99_s": percentile(latencies, 0.99),
        "retry_after_429s": seen["retry_after"],
        "retry_after_values": dict(retry_after_values),
        "fallback_samples": seen["fallback"],
        "answered_samples": seen["samples"],
        "errors": dict(seen["errors"]),
        "error_examples": examples,
        "redundancy": dict(redundancy),
    }
    out.write_text(json.dumps(result))


if __name__ == "__main__":
    typer.run(main)
