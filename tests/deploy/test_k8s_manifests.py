"""The Kubernetes manifests: schema-valid offline, and shaped as the deployment needs."""

from __future__ import annotations

import re
import runpy
from typing import Any

import kubernetes_validate
import pytest
import yaml

from deploy.entrypoint import DASHBOARD_PORT, plan
from deploy.migrate import store_problem
from services.checkout.config import CheckoutSettings
from services.common.config import DEFAULT_PORTS, Settings
from tests.deploy.helpers import (
    API_SERVICES,
    CONFIGMAP_NAME,
    DASHBOARD,
    DEPLOY,
    IMAGE_REPOSITORY,
    K8S,
    KUSTOMIZATIONS,
    OPTIONAL_SECRETS,
    OVERLAYS,
    ROOT,
    SECRET_LOOKING_NAME,
    SECRET_NAME,
    SECRET_VALUE_PATTERNS,
    SECRET_VARIABLES,
    all_documented_variables,
    containers,
    find,
    pod_labels,
    pod_spec,
    rendered,
    workloads,
)

# The cluster versions we deploy to: the oldest supported, and a newer one.
KUBERNETES_VERSIONS = ("1.30", "1.33")
ALL = sorted(KUSTOMIZATIONS)


def _identity(resource: dict[str, Any]) -> str:
    return f"{resource['kind']}/{resource['metadata']['name']}"


# --- schema --------------------------------------------------------------------------------
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("name", ALL)
def test_every_rendered_manifest_validates_against_the_kubernetes_schema(name: str, version: str) -> None:
    resources = rendered(name)
    assert len(resources) >= 19
    for resource in resources:
        try:
            # strict: unknown fields (a misspelt probe, say) are errors too.
            kubernetes_validate.validate(resource, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(part) for part in error.path)
            pytest.fail(f"{name}: {_identity(resource)} is invalid for {version} at {path}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError as error:
            pytest.fail(f"{name}: {error.message}")


def test_validation_catches_a_broken_manifest() -> None:
    deployment = find(rendered("base"), "Deployment", "checkout")
    pod_spec(deployment)["containers"][0]["readinesProbe"] = {"httpGet": {"path": "/readyz"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[0], strict=True)


# --- the three services ---------------------------------------------------------------------
def _python_probe(port: int) -> list[str]:
    # Not httpGet, which podman kube play runs as curl (not in the image), and no named
    # port, which it resolves to 0; no argument with a space, as it runs the line through sh.
    command = ["python", "-m", "deploy.probe", f"http://127.0.0.1:{port}/healthz"]
    assert not [part for part in command if " " in part or "'" in part]
    return command


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("service", API_SERVICES)
def test_service_deployment_probes_resources_and_security(name: str, service: str) -> None:
    resources = rendered(name)
    deployment = find(resources, "Deployment", service)
    [container] = pod_spec(deployment)["containers"]
    assert container["args"] == ["serve", service]
    assert container["ports"] == [{"name": "http", "containerPort": DEFAULT_PORTS[service]}]
    port = DEFAULT_PORTS[service]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port}
    assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": port}
    assert container["livenessProbe"]["exec"]["command"] == _python_probe(port)
    for kind in ("requests", "limits"):
        assert set(container["resources"][kind]) == {"cpu", "memory"}, kind
    # The HPA owns the replica count: a fixed one here would reset it on every apply.
    assert "replicas" not in deployment["spec"]
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


@pytest.mark.parametrize("name", ALL)
def test_dashboard_deployment_service_probes_resources_and_security(name: str) -> None:
    resources = rendered(name)
    deployment = find(resources, "Deployment", DASHBOARD)
    [container] = pod_spec(deployment)["containers"]
    assert container["args"] == ["dashboard"]
    assert container["ports"] == [{"name": "http", "containerPort": DASHBOARD_PORT}]
    # The dashboard has no /readyz: every probe is /healthz, which needs no token and no store.
    for probe in ("readinessProbe", "startupProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": DASHBOARD_PORT}, probe
    assert container["livenessProbe"]["exec"]["command"] == _python_probe(DASHBOARD_PORT)
    for kind in ("requests", "limits"):
        assert set(container["resources"][kind]) == {"cpu", "memory"}, kind
    assert deployment["spec"]["replicas"] >= 1
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    # No /metrics to scrape.
    assert "prometheus.io/scrape" not in (deployment["spec"]["template"]["metadata"].get("annotations") or {})
    gunicorn = {item["name"]: item["value"] for item in container["env"] if "value" in item}
    assert int(gunicorn["WEB_CONCURRENCY"]) >= 1 and int(gunicorn["THREADS"]) >= 1

    labels = pod_labels(deployment)
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    service = find(resources, "Service", DASHBOARD)
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"] == [{"name": "http", "port": DASHBOARD_PORT, "targetPort": "http"}]


@pytest.mark.parametrize("service", (*API_SERVICES, DASHBOARD))
def test_termination_grace_covers_prestop_and_gunicorn_graceful_timeout(service: str) -> None:
    gunicorn = runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))
    spec = pod_spec(find(rendered("base"), "Deployment", service))
    [container] = spec["containers"]
    assert container["lifecycle"]["preStop"]["exec"]["command"][0] == "sleep"
    pre_stop = int(container["lifecycle"]["preStop"]["exec"]["command"][1])
    assert spec["terminationGracePeriodSeconds"] > pre_stop + gunicorn["graceful_timeout"]


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("service", API_SERVICES)
def test_service_pdb_and_hpa_target_the_deployment(name: str, service: str) -> None:
    resources = rendered(name)
    labels = pod_labels(find(resources, "Deployment", service))
    selector = find(resources, "Deployment", service)["spec"]["selector"]["matchLabels"]
    assert selector.items() <= labels.items()

    svc = find(resources, "Service", service)
    assert svc["spec"]["selector"].items() <= labels.items()
    assert svc["spec"]["ports"] == [{"name": "http", "port": DEFAULT_PORTS[service], "targetPort": "http"}]

    pdb = find(resources, "PodDisruptionBudget", service)
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"]["maxUnavailable"] == 1

    hpa = find(resources, "HorizontalPodAutoscaler", service)
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": service}
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    [metric] = hpa["spec"]["metrics"]
    assert metric["type"] == "Resource" and metric["resource"]["name"] == "cpu"


def test_production_keeps_at_least_two_pods_of_each_service() -> None:
    resources = rendered("production")
    for service in API_SERVICES:
        assert find(resources, "HorizontalPodAutoscaler", service)["spec"]["minReplicas"] >= 2


# --- every workload ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", ALL)
def test_every_workload_runs_as_non_root_with_requests_and_limits(name: str) -> None:
    for workload in workloads(rendered(name)):
        spec = pod_spec(workload)
        assert spec["securityContext"]["runAsNonRoot"] is True, _identity(workload)
        assert spec["securityContext"]["runAsUser"] != 0
        assert spec["automountServiceAccountToken"] is False
        for container in containers(workload):
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
            for kind in ("requests", "limits"):
                assert set(container["resources"][kind]) == {"cpu", "memory"}, (_identity(workload), kind)


def _overlay_tag(name: str) -> str | None:
    if name == "base":
        return None
    kustomization = yaml.safe_load((KUSTOMIZATIONS[name] / "kustomization.yaml").read_text())
    [image] = kustomization["images"]
    assert image["name"] == IMAGE_REPOSITORY
    return str(image["newTag"])


@pytest.mark.parametrize("name", ALL)
def test_every_container_runs_the_app_image_with_an_explicit_tag(name: str) -> None:
    tag = _overlay_tag(name)
    for workload in workloads(rendered(name)):
        for container in containers(workload):
            repository, _, image_tag = container["image"].rpartition(":")
            assert repository == IMAGE_REPOSITORY, container["image"]
            assert re.fullmatch(r"\d+\.\d+\.\d+(-[\w.]+)?", image_tag), container["image"]
            if tag is not None:
                assert image_tag == tag


@pytest.mark.parametrize("name", ALL)
def test_every_workload_runs_an_entrypoint_role(name: str) -> None:
    for workload in workloads(rendered(name)):
        for container in containers(workload):
            assert "command" not in container, "the image's ENTRYPOINT is the role dispatcher"
            plan(container["args"], {})  # exits 2 on an unknown role


@pytest.mark.parametrize("name", ALL)
def test_worker_deliver_sweeps_and_migration_use_their_roles(name: str) -> None:
    resources = rendered(name)
    worker = find(resources, "Deployment", "worker")
    assert containers(worker)[0]["args"] == ["worker", "checkout", "trials"]
    if name != "staging":
        assert worker["spec"]["replicas"] == 2  # safe: rows are claimed with SKIP LOCKED
    collector = find(resources, "Deployment", "collector")
    assert containers(collector)[0]["args"] == ["worker", "experiments"]
    assert collector["spec"]["replicas"] == 1  # enough; more would be safe (duplicates are ignored)
    assert containers(find(resources, "Deployment", "deliver"))[0]["args"] == ["deliver"]

    for cron, sweep in (("sweep-trials", "trials"), ("sweep-renewals", "renewals")):
        job = find(resources, "CronJob", cron)
        assert containers(job)[0]["args"] == ["sweep", sweep]
        assert job["spec"]["concurrencyPolicy"] == "Forbid"
        assert job["spec"]["schedule"] == "*/5 * * * *"
        assert pod_spec(job)["restartPolicy"] == "Never"

    migrate = find(resources, "Job", "migrate")
    assert containers(migrate)[0]["args"] == ["migrate"]
    assert pod_spec(migrate)["restartPolicy"] == "Never"
    assert migrate["metadata"]["annotations"]["argocd.argoproj.io/hook"] == "PreSync"
    # The pipeline applies `-l app.kubernetes.io/component=migration` first: only the Job matches.
    migration = [r for r in resources
                 if r["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "migration"]
    assert migration == [migrate]


# --- configuration and secrets ----------------------------------------------------------------
def _env_names(container: dict[str, Any]) -> list[str]:
    return [item["name"] for item in container.get("env", [])]


@pytest.mark.parametrize("name", ALL)
def test_secrets_only_by_secret_key_ref(name: str) -> None:
    resources = rendered(name)
    assert not [r for r in resources if r["kind"] == "Secret"], "secrets are created outside the manifests"
    config = find(resources, "ConfigMap", CONFIGMAP_NAME)
    assert not [key for key in config["data"] if key in SECRET_VARIABLES or SECRET_LOOKING_NAME.search(key)]
    for workload in workloads(resources):
        for container in containers(workload):
            assert [ref["configMapRef"]["name"] for ref in container["envFrom"]] == [CONFIGMAP_NAME]
            for item in container.get("env", []):
                if item["name"] in SECRET_VARIABLES or SECRET_LOOKING_NAME.search(item["name"]):
                    assert "value" not in item, (_identity(workload), item["name"])
                    ref = item["valueFrom"]["secretKeyRef"]
                    assert ref["name"] == SECRET_NAME
                    # One naming rule, so a variable can not pick up another one's key.
                    assert ref["key"] == item["name"].lower().replace("_", "-"), item["name"]
                    optional = item["name"] in OPTIONAL_SECRETS
                    assert ref.get("optional", False) is optional, item["name"]


def test_no_literal_secret_in_any_manifest_file() -> None:
    for path in sorted(K8S.rglob("*.yaml")):
        text = path.read_text()
        for pattern in SECRET_VALUE_PATTERNS:
            assert not pattern.search(text), f"{path}: {pattern.pattern}"


# Which services' settings each role loads (Settings.from_env(service)); "experiments"
# is the event store (the collector also reads the three services' URLs).
ROLE_SERVICES = {
    ("serve", "checkout"): ["checkout"], ("serve", "trials"): ["trials"],
    ("serve", "notifications"): ["notifications"], ("worker", "checkout", "trials"): ["checkout", "trials"],
    ("worker", "experiments"): ["experiments", "checkout", "trials", "notifications"],
    ("dashboard",): ["experiments"],
    ("deliver",): ["notifications"], ("sweep", "trials"): ["trials"], ("sweep", "renewals"): ["checkout"],
    ("migrate",): ["checkout", "trials", "notifications", "experiments"],
}
# The roles that call Stripe (without the key they would use localstripe's test key).
STRIPE_ROLES = {("serve", "checkout"), ("worker", "checkout", "trials"), ("sweep", "renewals")}


@pytest.mark.parametrize("name", OVERLAYS)
def test_each_workload_has_the_settings_its_services_need_in_production(name: str) -> None:
    resources = rendered(name)
    config = find(resources, "ConfigMap", CONFIGMAP_NAME)["data"]
    assert config["APP_ENV"] == "production"
    for workload in workloads(resources):
        [container] = containers(workload)
        # What the pod's environment would hold, with a stand-in for every secret
        # (each database URL names its own database, as the Secret's must).
        environ = dict(config)
        environ.update({item["name"]: f"postgresql://u:p@db/{item['name'].lower()}"
                        if item["name"].endswith("DATABASE_URL") else item.get("value", "s" * 48)
                        for item in container["env"]})
        for service in ROLE_SERVICES[tuple(container["args"])]:
            # Each service reads its settings as it does (raises without the production secrets).
            settings = (CheckoutSettings if service == "checkout" else Settings).from_env(service, environ)
            assert settings.database_url.startswith("postgresql"), (_identity(workload), service)
            if isinstance(settings, CheckoutSettings):
                assert settings.stripe_api_base is None  # Stripe itself, not localstripe
            assert settings.service_urls == {s: f"http://{s}:{DEFAULT_PORTS[s]}" for s in API_SERVICES}
        assert ("STRIPE_SECRET_KEY" in environ) is (tuple(container["args"]) in STRIPE_ROLES)
        # Least privilege: no database URL of a service the role does not run.
        needed = {f"{s.upper()}_DATABASE_URL" for s in ROLE_SERVICES[tuple(container["args"])]}
        assert {n for n in _env_names(container) if n.endswith("DATABASE_URL")} == needed
        if "experiments" in ROLE_SERVICES[tuple(container["args"])]:
            # Set explicitly (never the DATABASE_URL or SQLite fallback), as `migrate` insists.
            assert store_problem(environ) is None, _identity(workload)


@pytest.mark.parametrize("name", ALL)
def test_the_experiments_collector_runs_in_exactly_one_deployment(name: str) -> None:
    """Every worker job runs somewhere; the `experiments` job in one Deployment only."""
    from deploy.worker import EXPERIMENTS, JOBS

    runs: dict[str, list[str]] = {job: [] for job in JOBS}
    for deployment in (r for r in rendered(name) if r["kind"] == "Deployment"):
        args = containers(deployment)[0]["args"]
        if args[0] == "worker":
            for job in [a for a in args[1:] if not a.startswith("-")] or JOBS:  # none named: all
                runs[job].append(deployment["metadata"]["name"])
    assert all(runs.values()), runs
    assert runs[EXPERIMENTS] == ["collector"]
    assert "collector" not in runs["checkout"] + runs["trials"]


@pytest.mark.parametrize("name", ALL)
def test_every_reference_in_a_pod_resolves(name: str) -> None:
    """Every secret key a pod reads is in the Secret the docs tell you to create; every
    ConfigMap a pod reads is rendered; no variable is set twice in a container."""
    docs = (ROOT / "docs" / "deployment.md").read_text()
    documented_keys = set(re.findall(r"--from-literal=([a-z0-9-]+)=", docs))
    resources = rendered(name)
    configmaps = {r["metadata"]["name"] for r in resources if r["kind"] == "ConfigMap"}
    referenced: set[str] = set()
    for workload in workloads(resources):
        for container in containers(workload):
            names = _env_names(container)
            assert len(names) == len(set(names)), (_identity(workload), names)
            for source in container["envFrom"]:
                assert source["configMapRef"]["name"] in configmaps
            for item in container.get("env", []):
                assert ("value" in item) != ("valueFrom" in item), item["name"]
                if "valueFrom" in item:
                    referenced.add(item["valueFrom"]["secretKeyRef"]["key"])
    assert referenced <= documented_keys, referenced - documented_keys
    assert "experiments-database-url" in referenced


@pytest.mark.parametrize("name", OVERLAYS)
def test_sign_in_is_wired_the_production_way(name: str) -> None:
    """An https issuer for every pod; the called services trust the relays' keys; the worker,
    which relays for checkout and trials in one process, holds one key for each."""
    resources = rendered(name)
    config = find(resources, "ConfigMap", CONFIGMAP_NAME)["data"]
    assert config["OIDC_ISSUER"].startswith("https://") and config["OIDC_CLIENT_ID"]
    for workload in workloads(resources):
        [container] = containers(workload)
        names = set(_env_names(container))
        assert "OIDC_CLIENT_SECRET" in names, _identity(workload)
        assert ("SERVICE_PUBLIC_KEYS" in names) is (container["args"][0] == "serve"), _identity(workload)
        relays = {"CHECKOUT_SERVICE_KEY", "TRIALS_SERVICE_KEY"}
        assert (names & relays) == (relays if container["args"] == ["worker", "checkout", "trials"] else set())


@pytest.mark.parametrize("name", OVERLAYS)
def test_the_flag_settings_are_optional_and_default_to_the_payload_in_the_image(name: str) -> None:
    config = find(rendered(name), "ConfigMap", CONFIGMAP_NAME)["data"]
    assert config["GROWTHBOOK_PAYLOAD_FILE"] == "" and config["GROWTHBOOK_API_HOST"] == ""
    secrets = {"AUTH_SECRET": "s" * 48, "STRIPE_WEBHOOK_SECRET": "w" * 40, "OIDC_CLIENT_SECRET": "o" * 40}
    settings = Settings.from_env("checkout", {**config, **secrets})
    assert settings.growthbook_payload_file == str(ROOT / "experiments" / "payload.json")
    assert settings.growthbook_api_host is None and settings.growthbook_refresh_seconds > 0


def test_every_variable_in_the_manifests_is_documented() -> None:
    documented = all_documented_variables()
    names: set[str] = set()
    for name in ALL:
        resources = rendered(name)
        names |= set(find(resources, "ConfigMap", CONFIGMAP_NAME)["data"])
        for workload in workloads(resources):
            for container in containers(workload):
                names |= set(_env_names(container))
    assert names - documented == set()


# --- ingress ------------------------------------------------------------------------------------
def _routes(ingress: dict[str, Any]) -> dict[str, list[tuple[str, str, str]]]:
    """host -> [(path, pathType, service)]"""
    return {rule["host"]: [(p["path"], p["pathType"], p["backend"]["service"]["name"])
                           for p in rule["http"]["paths"]]
            for rule in ingress["spec"]["rules"]}


def _routed(paths: list[tuple[str, str, str]], url: str) -> str | None:
    """The service the ingress sends `url` to (Exact, then the longest Prefix by path element)."""
    for path, kind, service in paths:
        if kind == "Exact" and url == path:
            return service
    best: tuple[int, str] | None = None
    for path, kind, service in paths:
        if kind == "Prefix" and (url == path or url.startswith(path.rstrip("/") + "/")):
            if best is None or len(path) > best[0]:
                best = (len(path), service)
    return best[1] if best else None


@pytest.fixture(scope="module")
def public_routes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """Each service's routes (path up to the first variable part), from its Flask app
    as the cluster runs it (APP_ENV=production)."""
    import importlib

    folder = tmp_path_factory.mktemp("routes")
    routes = {}
    for service in API_SERVICES:
        module = importlib.import_module(f"services.{service}.app")
        app = module.create_app(Settings(service=service, database_url=f"sqlite:///{folder / service}.db",
                                         environment="production"))
        routes[service] = sorted({rule.rule.split("<")[0] or "/" for rule in app.url_map.iter_rules()
                                  if not rule.rule.startswith("/static/")})
        app.extensions["service_context"].close()
    from experiments.dashboard import create_app

    dashboard = create_app(Settings(service="experiments", database_url=f"sqlite:///{folder / 'store'}.db"))
    routes[DASHBOARD] = sorted({rule.rule.split("<")[0] or "/" for rule in dashboard.url_map.iter_rules()
                                if not rule.rule.startswith("/static/")})
    dashboard.extensions["experiments_store"].dispose()
    return routes


INTERNAL = ("/internal/events", "/internal/directory/hooks", "/metrics", "/healthz", "/readyz")


@pytest.mark.parametrize("name", ALL)
def test_ingress_routes_every_public_route_and_nothing_internal(
        name: str, public_routes: dict[str, list[str]]) -> None:
    resources = rendered(name)
    ingress = find(resources, "Ingress", "devops-checkout")
    routes = _routes(ingress)
    assert len(routes) == 3
    by_service = {}
    for host, paths in routes.items():
        [service] = {target for _, _, target in paths}
        by_service[service] = paths
        port = {p["backend"]["service"]["port"]["name"] for p in
                next(r for r in ingress["spec"]["rules"] if r["host"] == host)["http"]["paths"]}
        assert port == {"http"}
    assert sorted(by_service) == sorted(API_SERVICES)
    for service, paths in by_service.items():
        for route in public_routes[service]:
            if route.rstrip("/") in INTERNAL:
                assert _routed(paths, route) is None, f"{service}{route} must stay inside the cluster"
            else:
                assert _routed(paths, route) == service, f"{service}: {route} is not routed"
    # Stripe reaches the webhook on the checkout host.
    assert _routed(by_service["checkout"], "/stripe/webhooks") == "checkout"
    # The pages are routed, and signing in to them on their own host.
    for service, page in (("checkout", "/checkout/orders/7"), ("checkout", "/billing/200"), ("trials", "/trials")):
        for path in (page, "/static/pages/pages.css", "/sign-in", "/sign-in/callback", "/sign-out"):
            assert _routed(by_service[service], path) == service
    tls_hosts = [host for entry in ingress["spec"]["tls"] for host in entry["hosts"]]
    assert sorted(tls_hosts) == sorted(routes)


@pytest.mark.parametrize("name", ALL)
def test_dashboard_ingress_routes_its_pages_on_its_own_host(name: str,
                                                           public_routes: dict[str, list[str]]) -> None:
    resources = rendered(name)
    ingress = find(resources, "Ingress", DASHBOARD)
    assert ingress["spec"]["ingressClassName"] == "nginx"
    routes = _routes(ingress)
    [(host, paths)] = routes.items()
    assert host.startswith("growth.")
    assert {target for _, _, target in paths} == {DASHBOARD}
    assert {p["backend"]["service"]["port"]["name"] for p in ingress["spec"]["rules"][0]["http"]["paths"]} == {"http"}
    for route in public_routes[DASHBOARD]:
        if route in INTERNAL:
            assert _routed(paths, route) is None, f"dashboard {route} must stay inside the cluster"
        else:
            assert _routed(paths, route) == DASHBOARD, f"dashboard: {route} is not routed"
    for url in ("/experiments/smb-discount-prompt", "/experiments/smb-discount-prompt.json"):
        assert _routed(paths, url) == DASHBOARD
    assert _routed(paths, "/healthz") is None
    [tls] = ingress["spec"]["tls"]
    assert tls["hosts"] == [host]
    # Its own certificate, not the public API's.
    assert tls["secretName"] not in {t["secretName"] for t in find(resources, "Ingress", "devops-checkout")["spec"]["tls"]}
    public_hosts = set(_routes(find(resources, "Ingress", "devops-checkout")))
    assert host not in public_hosts
    # growth.<domain>: the public API's domain.
    assert {h.split(".", 1)[1] for h in public_hosts} == {host.split(".", 1)[1]}
    if name != "base":
        assert ingress["metadata"]["annotations"] == find(resources, "Ingress", "devops-checkout")["metadata"]["annotations"]


def test_overlays_set_their_own_hosts_namespace_and_sizes() -> None:
    base_hosts = set(_routes(find(rendered("base"), "Ingress", "devops-checkout")))
    base_hosts |= set(_routes(find(rendered("base"), "Ingress", DASHBOARD)))
    seen_hosts = []
    for name in OVERLAYS:
        resources = rendered(name)
        hosts = set(_routes(find(resources, "Ingress", "devops-checkout")))
        hosts |= set(_routes(find(resources, "Ingress", DASHBOARD)))
        assert hosts.isdisjoint(base_hosts) and all(".example.com" in h for h in hosts)
        seen_hosts.append(hosts)
        namespaces = {r["metadata"].get("namespace") for r in resources}
        assert len(namespaces) == 1 and None not in namespaces
    assert seen_hosts[0].isdisjoint(seen_hosts[1])
    staging, production = (find(rendered(n), "HorizontalPodAutoscaler", "checkout") for n in OVERLAYS)
    assert staging["spec"]["maxReplicas"] < production["spec"]["maxReplicas"]
    checkout = [containers(find(rendered(n), "Deployment", "checkout"))[0]["resources"] for n in ALL]
    assert len({str(r) for r in checkout}) == 3  # base, staging and production differ
