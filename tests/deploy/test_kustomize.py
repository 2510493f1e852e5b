"""deploy/kustomize.py: the renderer the manifest tests rely on."""

from __future__ import annotations

import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest
import yaml

from deploy.kustomize import KustomizeError, render, split_image
from tests.deploy.helpers import KUSTOMIZATIONS

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      initContainers:
        - name: init
          image: registry.example.com/app:1.0.0
      containers:
        - name: web
          image: registry.example.com/app:1.0.0
          env:
            - {name: A, value: "1"}
            - {name: B, value: "2"}
          resources:
            requests: {cpu: 100m, memory: 128Mi}
        - name: sidecar
          image: docker.io/library/nginx:1.27
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {MODE: base, KEEP: "yes"}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: reader}
rules: []
"""


OVERLAY = {
    "overlay/kustomization.yaml": """\
    namespace: shop
    resources: [../base]
    images:
      - {name: registry.example.com/app, newTag: 2.0.0}
    replicas:
      - {name: web, count: 3}
    patches:
      - path: settings.yaml
      - path: web.yaml
      - target: {kind: Deployment, name: web}
        patch: |-
          - {op: replace, path: /spec/template/spec/containers/0/env/0/value, value: "10"}
          - {op: add, path: /metadata/annotations, value: {owner: team}}
          - {op: remove, path: /spec/template/spec/containers/1}
    """,
    "overlay/settings.yaml": """\
    apiVersion: v1
    kind: ConfigMap
    metadata: {name: settings}
    data: {MODE: overlay, EXTRA: "1"}
    """,
    "overlay/web.yaml": """\
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: web}
    spec:
      template:
        spec:
          containers:
            - name: web
              env:
                - {name: B, value: "20"}
                - {name: C, value: "3"}
              resources:
                requests: {cpu: 500m}
                limits: {cpu: "1"}
    """,
}


def write(directory: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return directory


@pytest.fixture
def base(tmp_path: Path) -> Path:
    return write(tmp_path, {
        "base/kustomization.yaml": "resources: [app.yaml]\n",
        "base/app.yaml": DEPLOYMENT,
    }) / "base"


def by_name(resources: list[dict], kind: str, name: str) -> dict:
    return next(r for r in resources if r["kind"] == kind and r["metadata"]["name"] == name)


def test_base_renders_its_resources_in_order(base: Path) -> None:
    resources = render(base)
    assert [(r["kind"], r["metadata"]["name"]) for r in resources] == [
        ("Deployment", "web"), ("ConfigMap", "settings"), ("ClusterRole", "reader")]


def test_overlay_applies_namespace_images_replicas_and_patches(base: Path) -> None:
    overlay = write(base.parent, OVERLAY) / "overlay"
    resources = render(overlay)
    web = by_name(resources, "Deployment", "web")
    settings = by_name(resources, "ConfigMap", "settings")
    assert web["metadata"]["namespace"] == "shop" and settings["metadata"]["namespace"] == "shop"
    assert "namespace" not in by_name(resources, "ClusterRole", "reader")["metadata"]
    assert web["spec"]["replicas"] == 3
    assert settings["data"] == {"MODE": "overlay", "KEEP": "yes", "EXTRA": "1"}
    assert web["metadata"]["annotations"] == {"owner": "team"}
    pod = web["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["containers"]] == ["web"]  # the sidecar was removed
    container = pod["containers"][0]
    assert container["image"] == "registry.example.com/app:2.0.0"
    assert pod["initContainers"][0]["image"] == "registry.example.com/app:2.0.0"
    # kustomize puts the patch's list items first, then the base's others.
    assert container["env"] == [{"name": "B", "value": "10"}, {"name": "C", "value": "3"},
                                {"name": "A", "value": "1"}]
    assert container["resources"] == {"requests": {"cpu": "500m", "memory": "128Mi"}, "limits": {"cpu": "1"}}


def test_base_is_left_as_it_was(base: Path) -> None:
    write(base.parent, {"overlay/kustomization.yaml": "namespace: x\nresources: [../base]\n"})
    render(base.parent / "overlay")
    assert "namespace" not in render(base)[0]["metadata"]


def test_images_by_digest_and_new_name_leave_other_images(base: Path) -> None:
    overlay = write(base.parent, {"overlay/kustomization.yaml": """\
        resources: [../base]
        images:
          - {name: registry.example.com/app, newName: mirror.example.com/app, digest: "sha256:abc"}
        """}) / "overlay"
    pod = render(overlay)[0]["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == "mirror.example.com/app@sha256:abc"
    assert pod["containers"][1]["image"] == "docker.io/library/nginx:1.27"


@pytest.mark.parametrize(("image", "parts"), [
    ("registry.example.com/app:1.0", ("registry.example.com/app", "1.0", None)),
    ("localhost:5000/app", ("localhost:5000/app", None, None)),
    ("localhost:5000/app:2@sha256:ff", ("localhost:5000/app", "2", "sha256:ff")),
    ("nginx", ("nginx", None, None)),
])
def test_split_image(image: str, parts: tuple) -> None:
    assert split_image(image) == parts


@pytest.mark.parametrize(("kustomization", "message"), [
    ("resources: [../base]\ncommonLabels: {a: b}\n", "unsupported kustomization fields"),
    ("resources: [../base]\nreplicas: [{name: nothing, count: 2}]\n", "no workload named"),
    ("resources: [../base, ../base/app.yaml]\n", "declared twice"),
    ("resources: [missing.yaml]\n", "not found"),
    ("resources: [../base]\npatches: [{path: p.yaml, options: {allowNameChange: true}}]\n",
     "unsupported patch fields"),
    ("resources: [../base]\npatches:\n  - target: {kind: Deployment, labelSelector: a=b}\n"
     "    patch: '[{op: remove, path: /spec}]'\n", "unsupported target selectors"),
    ("resources: [../base]\npatches:\n  - patch: '[{op: remove, path: /spec}]'\n", "needs a target"),
    ("resources: [../base]\npatches:\n  - target: {kind: Deployment, name: web}\n"
     "    patch: '[{op: move, from: /a, path: /b}]'\n", "unsupported JSON 6902 operation"),
    ("resources: [../base]\npatches:\n  - target: {kind: Deployment, name: web}\n"
     "    patch: '[{op: replace, path: /spec/nothing, value: 1}]'\n", "no such location"),
    ("resources: [../base]\npatches:\n  - patch: '{apiVersion: v1, kind: ConfigMap, metadata: {name: other}}'\n",
     "no resource ConfigMap/other"),
    ("resources: [../base]\npatches:\n  - patch: '{kind: ConfigMap, metadata: {name: settings}, $patch: delete}'\n",
     "directives"),
])
def test_unsupported_or_wrong_kustomizations_are_refused(base: Path, kustomization: str, message: str) -> None:
    overlay = write(base.parent, {"overlay/kustomization.yaml": kustomization}) / "overlay"
    with pytest.raises(KustomizeError, match=message):
        render(overlay)


def test_a_directory_without_kustomization_is_refused(tmp_path: Path) -> None:
    with pytest.raises(KustomizeError, match="no kustomization"):
        render(tmp_path)


def _by_identity(resources: list[dict]) -> dict[tuple[str, str], dict]:
    return {(r["kind"], r["metadata"]["name"]): r for r in resources}


NO_KUBECTL = pytest.mark.skipif(shutil.which("kubectl") is None,
                                reason="kubectl (with its built-in kustomize) is not installed")


def assert_same_as_kubectl(directory: Path) -> None:
    out = subprocess.run(["kubectl", "kustomize", str(directory)], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    theirs = _by_identity([doc for doc in yaml.safe_load_all(out) if doc])
    mine = _by_identity(render(directory))
    assert mine.keys() == theirs.keys()
    for identity, resource in mine.items():
        assert resource == theirs[identity], identity


@NO_KUBECTL
@pytest.mark.parametrize("name", sorted(KUSTOMIZATIONS))
def test_renders_our_manifests_as_kubectl_kustomize_does(name: str) -> None:
    assert_same_as_kubectl(KUSTOMIZATIONS[name])


@NO_KUBECTL
def test_renders_every_supported_feature_as_kubectl_kustomize_does(base: Path) -> None:
    assert_same_as_kubectl(write(base.parent, OVERLAY) / "overlay")
