"""Validate custom resources in rendered manifests against their CRDs' OpenAPI schemas.

kubernetes-validate carries the built-in kinds only and skips custom resources with a warning. This
checks the custom resources (ScaledObject, ServiceMonitor, RayJob) against the openAPIV3Schema of CRD
files given on the command line, strictly: a field the schema does not declare is an error (what the
API server's strict field validation, `kubectl apply --validate=strict`, refuses), unless the schema
keeps unknown fields (x-kubernetes-preserve-unknown-fields).

    kubectl kustomize k8s/overlays/gpu | python k8s/validate_crds.py --crd keda.sh_scaledobjects.yaml \
        --crd monitoring.coreos.com_servicemonitors.yaml -

Needs PyYAML and jsonschema (both come with kubernetes-validate). Exit 1 on an invalid resource or a
custom resource without a CRD given.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import jsonschema
import yaml


def strict(schema: Any) -> Any:
    """The schema with additionalProperties false on every object that declares its properties."""
    if isinstance(schema, dict):
        out = {k: strict(v) for k, v in schema.items()}
        if (
            "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict(v) for v in schema]
    return schema


def load_crds(paths: list[str]) -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> the version's openAPIV3Schema, from CRD files."""
    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for doc in yaml.safe_load_all(f):
                if not doc or doc.get("kind") != "CustomResourceDefinition":
                    continue
                spec = doc["spec"]
                for version in spec["versions"]:
                    api_version = f"{spec['group']}/{version['name']}"
                    schemas[(api_version, spec["names"]["kind"])] = version["schema"]["openAPIV3Schema"]
    return schemas


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crd", action="append", default=[], help="a CRD file (repeat)")
    parser.add_argument("manifests", nargs="+", help="rendered manifests; - for stdin")
    args = parser.parse_args()
    schemas = load_crds(args.crd)
    builtin_groups = {"v1", "apps/v1", "policy/v1", "networking.k8s.io/v1", "batch/v1", "autoscaling/v2"}
    rc = 0
    for name in args.manifests:
        text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
        for doc in yaml.safe_load_all(text):
            if not doc:
                continue
            key = (doc["apiVersion"], doc["kind"])
            label = f"{doc['kind'].lower()}/{doc['metadata']['name']}"
            if doc["apiVersion"] in builtin_groups:
                continue
            if key not in schemas:
                print(f"ERROR {label}: no CRD given for {key[0]} {key[1]}")
                rc = 1
                continue
            validator = jsonschema.Draft7Validator(strict(schemas[key]))
            errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
            for error in errors:
                where = ".".join(str(p) for p in error.path) or "(root)"
                print(f"ERROR {label} against {key[0]}: {where}: {error.message}")
            if errors:
                rc = 1
            else:
                print(f"INFO {label} passed against the CRD of {key[0]} {key[1]}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
