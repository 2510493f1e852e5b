"""`make kube-play`: the Kubernetes overlay's Deployments started by `podman kube
play`, as far as one machine without a cluster can take them.

The overlay is rendered (deploy/kustomize.py) and played unchanged but for what
only a cluster has: kube play ignores Jobs, CronJobs, Services, Ingresses,
HPAs and PDBs (the schema tests in tests/deploy keep those honest), refuses a
`kind: Secret` (the Secret comes from `podman secret create`, as a real one
comes from a secret manager), and has no Service DNS. So the ConfigMap gets this
machine's addresses (127.0.0.1 on the host network, this machine's PostgreSQL
in fresh databases, a localstripe and an SMTP sink from the same image), the
image the overlay names is the local one under that name, and the migration
Job's work is done by `podman run ... migrate` first.

Then every Deployment must be running and pass its liveness probe as podman
runs it (`podman healthcheck run`), and the services must answer /readyz.

    python -m devtools.kube_play [--overlay deploy/k8s/overlays/staging] [--keep]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests
import yaml  # type: ignore[import-untyped]

from devtools.image_test import Stack, fresh_databases, podman, wait_until
from services.common.config import ROOT

SECRET = "devops-checkout-secrets"
# What kube play can start; everything else in the overlay it ignores or refuses.
PLAYED = ("ConfigMap", "Deployment")
PORTS = {"checkout": 8001, "trials": 8002, "notifications": 8003, "dashboard": 8004}


def step(message: str) -> None:
    print(f"kube-play: {message}", flush=True)


def secret_data(stack: Stack) -> dict[str, str]:
    """The Secret the Deployments reference (keys as in docs/deployment.md) as podman 4.3's kube
    play reads a `podman secret`: a JSON object of the Secret's `data`, base64 values."""
    env = stack.env
    data = {"auth-secret": env["AUTH_SECRET"], "stripe-secret-key": env["STRIPE_SECRET_KEY"],
            "stripe-publishable-key": env["STRIPE_PUBLISHABLE_KEY"],
            "stripe-webhook-secret": env["STRIPE_WEBHOOK_SECRET"],
            "oidc-client-secret": env["OIDC_CLIENT_SECRET"],
            "service-public-keys": env["SERVICE_PUBLIC_KEYS"],
            "checkout-service-key": stack.keys["checkout"], "trials-service-key": stack.keys["trials"]}
    data |= {f"{name}-database-url": env[f"{name.upper()}_DATABASE_URL"] for name in stack.databases}
    return {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}


def local_config(stack: Stack) -> dict[str, str]:
    """The ConfigMap's values that name cluster hosts, pointed at this machine."""
    return {"STRIPE_API_BASE": stack.urls["localstripe"],
            **{f"{name.upper()}_URL": f"http://127.0.0.1:{PORTS[name]}"
               for name in ("checkout", "trials", "notifications")},
            "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(stack.ports["smtp"]),
            # Redis is a cluster dependency; the discount-code limits count in memory here.
            "RATELIMIT_STORAGE_URI": "memory://",
            "WEB_CONCURRENCY": "1", "THREADS": "4"}


def played(overlay: Path, stack: Stack) -> tuple[list[dict[str, Any]], str]:
    # deploy/kustomize.py renders it, as the tests do (a subprocess: deploy/ is no package mypy checks).
    text = subprocess.run([sys.executable, "-m", "deploy.kustomize", str(overlay)], cwd=ROOT,
                          capture_output=True, text=True, check=True).stdout
    resources = [resource for resource in yaml.safe_load_all(text) if resource and resource["kind"] in PLAYED]
    images = set()
    for resource in resources:
        if resource["kind"] == "ConfigMap":
            resource["data"] |= local_config(stack)
            continue
        for container in resource["spec"]["template"]["spec"]["containers"]:
            images.add(container["image"])
            # On the host's network kube play refuses port mappings; the pods bind the host's ports.
            container.pop("ports", None)
    [image] = images
    return resources, image


def port_free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def containers(deployments: list[str]) -> dict[str, str]:
    """{container name: its pod} for the app containers kube play started (one pod per Deployment)."""
    pods = {f"{name}-pod-0" for name in deployments}
    listing = json.loads(podman("ps", "-a", "--pod", "--format", "json").stdout)
    found = {entry["Names"][0]: entry["PodName"] for entry in listing
             if entry.get("PodName") in pods and not entry.get("IsInfra")}
    assert {*found.values()} == pods, f"pods started: {sorted({*found.values()})}, expected {sorted(pods)}"
    return found


def check_pods(deployments: list[str], names: dict[str, str]) -> None:
    started = time.monotonic()
    for name, pod in names.items():
        def running(name: str = name) -> bool:
            state = podman("inspect", "--format", "{{.State.Status}}", name, check=False).stdout.strip()
            logs = podman("logs", name, check=False).stderr[-3000:] if state in ("exited", "stopped") else ""
            assert not logs, f"{name} {state}:\n{logs}"
            return state == "running"
        wait_until(f"{name} running", running, timeout=120)
        # The pod's securityContext as podman applied it.
        user, read_only = podman("inspect", "--format", "{{.Config.User}} {{.HostConfig.ReadonlyRootfs}}",
                                 name).stdout.split()
        assert user.startswith("10001") and read_only == "true", f"{name}: user {user}, read-only {read_only}"
        health = podman("inspect", "--format", "{{json .Config.Healthcheck}}", name).stdout.strip()
        if health not in ("", "null"):
            def live(name: str = name) -> bool:
                return podman("healthcheck", "run", name, check=False).returncode == 0
            wait_until(f"{name}'s liveness probe ({health})", live, timeout=90)
            step(f"{pod}: running as {user}, read-only; liveness probe passes: "
                 f"{' '.join(json.loads(health)['Test'][1:])}")
        else:
            step(f"{pod}: running as {user}, read-only (no probe)")
    for name, port in PORTS.items():
        if name in deployments and name != "dashboard":
            def ready(port: int = port) -> bool:
                return requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5).ok
            wait_until(f"{name} /readyz", ready, timeout=60)
    step(f"every Deployment running and live, the services ready ({time.monotonic() - started:.0f} s)")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.kube_play", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--overlay", type=Path, default=Path("deploy/k8s/overlays/staging"))
    parser.add_argument("--image", default=os.environ.get("IMAGE", "devops-checkout:local"))
    parser.add_argument("--keep", action="store_true",
                        help="leave the pods, secret and databases (debugging)")
    args = parser.parse_args(argv)
    os.environ.setdefault("CONTAINERS_CONF", str(ROOT / "deploy" / "podman" / "containers.conf"))
    taken = [port for port in PORTS.values() if not port_free(port)]
    if taken:
        print(f"kube-play: the Deployments listen on the host's ports {taken}, which something holds",
              file=sys.stderr)
        return 1
    stack = Stack(args.image, int(os.environ.get("PORT_OFFSET") or 0))
    resources, image = played(args.overlay, stack)
    deployments = [resource["metadata"]["name"] for resource in resources if resource["kind"] == "Deployment"]
    workdir = Path(tempfile.mkdtemp(prefix="kube-play-"))
    manifest, secret = workdir / "overlay.yaml", workdir / "secret.json"
    manifest.write_text("\n---\n".join(json.dumps(resource) for resource in resources))  # JSON is YAML
    secret.write_text(json.dumps(secret_data(stack)))
    started = time.monotonic()
    try:
        with fresh_databases(stack, args.keep):
            podman("tag", args.image, image)
            podman("secret", "rm", SECRET, check=False)
            podman("secret", "create", SECRET, str(secret))
            result = stack.run("migrate", ["migrate"], detach=False)
            assert result.returncode == 0, result.stdout + result.stderr
            for role, run in (("localstripe", (["--port", str(stack.ports["localstripe"])], ["localstripe"])),
                              ("smtp", (["-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{stack.ports['smtp']}"],
                                        ["python"]))):
                assert stack.run(role, run[0], entrypoint=run[1]).returncode == 0
            step(f"{args.overlay}: {', '.join(deployments)} as {image}; "
                 "migrated, localstripe and an SMTP sink beside them")
            play = podman("kube", "play", "--replace", "--network", "host", str(manifest), check=False)
            assert play.returncode == 0, play.stdout + play.stderr
            check_pods(deployments, containers(deployments))
    except AssertionError as failure:
        print(f"kube-play: FAILED: {failure}", file=sys.stderr)
        return 1
    finally:
        if not args.keep:
            podman("kube", "down", str(manifest), check=False)
            for name in deployments:  # what a failed play leaves, which `kube down` does not remove
                podman("pod", "rm", "-f", f"{name}-pod-0", check=False)
            podman("secret", "rm", SECRET, check=False)
            podman("rmi", image, check=False)
            stack.remove()
    step(f"passed in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
