"""A small kustomize renderer for the subset deploy/k8s uses, so the tests can
render and validate the overlays without a kustomize binary.

    python -m deploy.kustomize deploy/k8s/overlays/production   # prints the YAML

Supported kustomization fields: `resources` (files and directories holding a
kustomization), `namespace`, `images` (newName / newTag / digest), `replicas`,
and `patches` (from `path` or inline `patch`; a strategic-merge patch, or a
JSON 6902 list of add / replace / remove operations with a `target` of kind and
name). Applied in kustomize's order: patches, namespace, replicas, images.
Anything else is refused, so a manifest never silently renders differently
here than with `kubectl apply -k`; tests/deploy also compares the output with
`kubectl kustomize` when kubectl is installed.

Strategic merge is the simple part of it: maps merge recursively, `null`
deletes a key, lists of containers, env, volumes, volumeMounts, ports and
imagePullSecrets merge by their key (the patch's items first, as kustomize
orders them), and any other list is replaced.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

Resource = dict[str, Any]

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
SUPPORTED_FIELDS = {"apiVersion", "kind", "resources", "namespace", "images", "replicas", "patches"}
CLUSTER_SCOPED = {
    "APIService", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "IngressClass",
    "MutatingWebhookConfiguration", "Namespace", "PersistentVolume", "PriorityClass", "RuntimeClass",
    "StorageClass", "ValidatingWebhookConfiguration",
}
SCALABLE = {"Deployment", "ReplicaSet", "ReplicationController", "StatefulSet"}
# Strategic-merge keys of the lists this renderer merges (any other list is replaced).
MERGE_KEYS = {
    "containers": "name", "initContainers": "name", "ephemeralContainers": "name", "env": "name",
    "volumes": "name", "imagePullSecrets": "name", "volumeMounts": "mountPath",
}


class KustomizeError(ValueError):
    """A kustomization this renderer does not support, or one that does not apply."""


def find_kustomization(directory: Path) -> Path:
    for name in KUSTOMIZATION_FILES:
        if (directory / name).is_file():
            return directory / name
    raise KustomizeError(f"no kustomization file in {directory}")


def _load_documents(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def render(directory: Path | str) -> list[Resource]:
    """The resources `kubectl kustomize <directory>` would print (in file order)."""
    directory = Path(directory)
    kustomization = _load_documents(find_kustomization(directory))
    if len(kustomization) != 1 or not isinstance(kustomization[0], dict):
        raise KustomizeError(f"{directory}: the kustomization must be one mapping")
    spec: dict[str, Any] = kustomization[0]
    unsupported = set(spec) - SUPPORTED_FIELDS
    if unsupported:
        raise KustomizeError(f"{directory}: unsupported kustomization fields {sorted(unsupported)}")
    if spec.get("kind", "Kustomization") != "Kustomization":
        raise KustomizeError(f"{directory}: kind {spec['kind']!r} is not supported")

    resources: list[Resource] = []
    for entry in spec.get("resources") or []:
        path = directory / entry
        if path.is_dir():
            resources.extend(render(path))
        elif path.is_file():
            for doc in _load_documents(path):
                if not isinstance(doc, dict) or "kind" not in doc:
                    raise KustomizeError(f"{path}: not a Kubernetes resource")
                resources.append(doc)
        else:
            raise KustomizeError(f"{directory}: resource {entry!r} not found")
    _check_unique(resources, directory)

    for patch in spec.get("patches") or []:
        resources = _apply_patch(resources, patch, directory)
    if namespace := spec.get("namespace"):
        for resource in resources:
            if resource["kind"] not in CLUSTER_SCOPED:
                resource.setdefault("metadata", {})["namespace"] = namespace
    for replica in spec.get("replicas") or []:
        _set_replicas(resources, replica, directory)
    for image in spec.get("images") or []:
        _set_images(resources, image)
    return resources


def _identity(resource: Resource) -> tuple[str, str, str]:
    metadata = resource.get("metadata") or {}
    return resource["kind"], metadata.get("namespace", ""), metadata.get("name", "")


def _check_unique(resources: list[Resource], directory: Path) -> None:
    seen: set[tuple[str, str, str]] = set()
    for resource in resources:
        identity = _identity(resource)
        if identity in seen:
            raise KustomizeError(f"{directory}: {identity} is declared twice")
        seen.add(identity)


# --- patches -------------------------------------------------------------------------------
def _apply_patch(resources: list[Resource], entry: dict[str, Any], directory: Path) -> list[Resource]:
    unsupported = set(entry) - {"path", "patch", "target"}
    if unsupported:
        raise KustomizeError(f"{directory}: unsupported patch fields {sorted(unsupported)}")
    if "path" in entry:
        where = str(directory / entry["path"])
        documents = _load_documents(directory / entry["path"])
    elif "patch" in entry:
        where = f"{directory} (inline patch)"
        documents = [doc for doc in yaml.safe_load_all(entry["patch"]) if doc is not None]
    else:
        raise KustomizeError(f"{directory}: a patch needs `path` or `patch`")
    target = entry.get("target")
    if target is not None:
        unsupported = set(target) - {"kind", "name"}
        if unsupported:
            raise KustomizeError(f"{where}: unsupported target selectors {sorted(unsupported)}")

    if len(documents) == 1 and isinstance(documents[0], list):
        if target is None:
            raise KustomizeError(f"{where}: a JSON 6902 patch needs a target")
        matches = _select(resources, target.get("kind"), target.get("name"), where)
        return [_json6902(r, documents[0], where) if any(r is m for m in matches) else r
                for r in resources]
    for patch in documents:
        if not isinstance(patch, dict):
            raise KustomizeError(f"{where}: not a strategic-merge patch")
        if target is not None:
            matches = _select(resources, target.get("kind"), target.get("name"), where)
        else:
            matches = _select(resources, patch.get("kind"), (patch.get("metadata") or {}).get("name"), where)
        body = {k: v for k, v in patch.items() if k not in ("apiVersion", "kind")}
        body["metadata"] = {k: v for k, v in (patch.get("metadata") or {}).items()
                            if k not in ("name", "namespace")}
        if not body["metadata"]:
            del body["metadata"]
        resources = [_merge(r, body, where) if any(r is m for m in matches) else r for r in resources]
    return resources


def _select(resources: list[Resource], kind: str | None, name: str | None, where: str) -> list[Resource]:
    if not kind and not name:
        raise KustomizeError(f"{where}: the patch names no kind or name")
    matches = [r for r in resources
               if (not kind or r["kind"] == kind) and (not name or r["metadata"].get("name") == name)]
    if not matches:
        raise KustomizeError(f"{where}: no resource {kind}/{name} to patch")
    return matches


def _merge(base: Any, patch: Any, where: str, field: str = "") -> Any:
    if isinstance(base, dict) and isinstance(patch, dict):
        directives = [key for key in patch if str(key).startswith("$")]
        if directives:
            raise KustomizeError(f"{where}: patch directives {directives} are not supported")
        merged = dict(base)
        for key, value in patch.items():
            if value is None:
                merged.pop(key, None)
            elif key in merged:
                merged[key] = _merge(merged[key], value, where, key)
            else:
                merged[key] = copy.deepcopy(value)
        return merged
    if isinstance(base, list) and isinstance(patch, list):
        key = MERGE_KEYS.get(field)
        if field == "ports":
            key = "containerPort" if all("containerPort" in item for item in patch) else "port"
        if key and all(isinstance(item, dict) and key in item for item in base + patch):
            # As kustomize orders them: the patch's items first (merged into the
            # base's item with the same key), then the base's other items.
            olds = {item[key]: item for item in base}
            merged_list = [_merge(olds[item[key]], item, where, "") if item[key] in olds
                           else copy.deepcopy(item) for item in patch]
            patched = {item[key] for item in patch}
            return merged_list + [item for item in base if item[key] not in patched]
    return copy.deepcopy(patch)


def _pointer(path: str, where: str) -> list[str]:
    if not path.startswith("/"):
        raise KustomizeError(f"{where}: JSON pointer {path!r} must start with /")
    return [part.replace("~1", "/").replace("~0", "~") for part in path.split("/")[1:]]


def _json6902(resource: Resource, operations: list[Any], where: str) -> Resource:
    document = copy.deepcopy(resource)
    for operation in operations:
        op = operation.get("op") if isinstance(operation, dict) else None
        if op not in ("add", "replace", "remove"):
            raise KustomizeError(f"{where}: unsupported JSON 6902 operation {operation!r}")
        *parents, last = _pointer(operation["path"], where)
        container: Any = document
        try:
            for part in parents:
                container = container[int(part)] if isinstance(container, list) else container[part]
            if isinstance(container, list):
                if op == "add":
                    index = len(container) if last == "-" else int(last)
                    if not 0 <= index <= len(container):
                        raise IndexError(index)
                    container.insert(index, copy.deepcopy(operation["value"]))
                elif op == "replace":
                    container[int(last)] = copy.deepcopy(operation["value"])
                else:
                    del container[int(last)]
            elif op == "add":
                container[last] = copy.deepcopy(operation["value"])
            elif op == "replace":
                if last not in container:
                    raise KeyError(last)
                container[last] = copy.deepcopy(operation["value"])
            else:
                del container[last]
        except (KeyError, IndexError, ValueError, TypeError) as exc:
            raise KustomizeError(f"{where}: {op} {operation['path']}: no such location") from exc
    return document


# --- replicas and images -------------------------------------------------------------------
def _set_replicas(resources: list[Resource], entry: dict[str, Any], directory: Path) -> None:
    matches = [r for r in resources if r["kind"] in SCALABLE and r["metadata"]["name"] == entry["name"]]
    if not matches:
        raise KustomizeError(f"{directory}: replicas: no workload named {entry['name']!r}")
    for resource in matches:
        resource.setdefault("spec", {})["replicas"] = int(entry["count"])


def split_image(image: str) -> tuple[str, str | None, str | None]:
    """(name, tag, digest) of an image reference."""
    reference, _, digest = image.partition("@")
    name, tag = reference, None
    if reference.rfind(":") > reference.rfind("/"):
        name, _, tag = reference.rpartition(":")
    return name, tag, digest or None


def _containers(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("containers", "initContainers") and isinstance(value, list):
                yield from (c for c in value if isinstance(c, dict))
            else:
                yield from _containers(value)
    elif isinstance(node, list):
        for item in node:
            yield from _containers(item)


def _set_images(resources: list[Resource], entry: dict[str, Any]) -> None:
    unsupported = set(entry) - {"name", "newName", "newTag", "digest"}
    if unsupported:
        raise KustomizeError(f"images: unsupported fields {sorted(unsupported)}")
    for container in _containers(resources):
        name, tag, digest = split_image(str(container.get("image", "")))
        if name != entry["name"]:
            continue
        name = entry.get("newName", name)
        if "digest" in entry:
            container["image"] = f"{name}@{entry['digest']}"
        elif "newTag" in entry:
            container["image"] = f"{name}:{entry['newTag']}"
        else:
            container["image"] = name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m deploy.kustomize <directory>", file=sys.stderr)
        return 2
    yaml.safe_dump_all(render(argv[0]), sys.stdout, sort_keys=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
