"""Shared by the deployment tests: paths, rendered manifests, documented variables."""

from __future__ import annotations

import copy
import functools
import re
from pathlib import Path
from typing import Any

import yaml

from deploy.kustomize import render

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
OVERLAYS = ("staging", "production")
KUSTOMIZATIONS = {"base": K8S / "base", **{name: K8S / "overlays" / name for name in OVERLAYS}}
IMAGE_REPOSITORY = "registry.example.com/devops-checkout"
SECRET_NAME = "devops-checkout-secrets"
CONFIGMAP_NAME = "devops-checkout-config"
API_SERVICES = ("checkout", "trials", "notifications")
# The growth dashboard's Deployment, Service and Ingress (entrypoint role `dashboard`).
DASHBOARD = "dashboard"
# Environment variables that hold secrets: never a literal value in a manifest.
SECRET_VARIABLES = {
    "AUTH_SECRET", "STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY", "STRIPE_WEBHOOK_SECRET", "DATABASE_URL",
    "CHECKOUT_DATABASE_URL", "TRIALS_DATABASE_URL", "NOTIFICATIONS_DATABASE_URL", "EXPERIMENTS_DATABASE_URL",
    "POSTHOG_API_KEY", "GROWTHBOOK_CLIENT_KEY", "SENTRY_DSN",
    "OIDC_CLIENT_SECRET", "SERVICE_KEY", "CHECKOUT_SERVICE_KEY", "TRIALS_SERVICE_KEY",
}
# Optional secrets: a pod starts without them (the feature is off).
OPTIONAL_SECRETS = {"POSTHOG_API_KEY", "GROWTHBOOK_CLIENT_KEY", "SENTRY_DSN"}
SECRET_LOOKING_NAME = re.compile(r"SECRET|PASSWORD|TOKEN|_KEY$|DATABASE_URL|DSN")
# Literal credentials in any format we use.
SECRET_VALUE_PATTERNS = [
    re.compile(r"\b[sr]k_(live|test)_[A-Za-z0-9]+"),
    re.compile(r"\bwhsec_[A-Za-z0-9]+"),
    re.compile(r"\bphc_[A-Za-z0-9]{10,}"),
    re.compile(r"postgres(ql)?(\+\w+)?://[^:/\s@]+:[^@\s$]+@"),
    re.compile(r"redis://[^@\s/]*:[^@\s$]+@"),
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),
]


@functools.cache
def _rendered(name: str) -> tuple[dict[str, Any], ...]:
    return tuple(render(KUSTOMIZATIONS[name]))


def rendered(name: str) -> list[dict[str, Any]]:
    """A fresh copy of what `kubectl kustomize` gives for base / an overlay."""
    return copy.deepcopy(list(_rendered(name)))


def find(resources: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [r for r in resources if r["kind"] == kind and r["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
    return matches[0]


def pod_spec(resource: dict[str, Any]) -> dict[str, Any]:
    if resource["kind"] == "CronJob":
        return resource["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return resource["spec"]["template"]["spec"]


def pod_labels(resource: dict[str, Any]) -> dict[str, str]:
    if resource["kind"] == "CronJob":
        return resource["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    return resource["spec"]["template"]["metadata"]["labels"]


def workloads(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in resources if r["kind"] in ("Deployment", "Job", "CronJob")]


def containers(resource: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod_spec(resource)
    return list(spec.get("initContainers", [])) + list(spec["containers"])


def documented_variables(path: Path) -> set[str]:
    """Variable names in the first column of the markdown tables in `path`."""
    names: set[str] = set()
    for line in path.read_text().splitlines():
        if not line.startswith("| `"):
            continue
        first_column = line.split("|")[1]
        for name in re.findall(r"`([A-Z<][A-Z0-9_<>]*)`", first_column):
            if "<SERVICE>" in name:
                names.update(name.replace("<SERVICE>", s.upper()) for s in API_SERVICES)
            else:
                names.add(name)
    return names


def all_documented_variables() -> set[str]:
    return (documented_variables(ROOT / "docs" / "configuration.md")
            | documented_variables(ROOT / "docs" / "deployment.md"))


def load_compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())
