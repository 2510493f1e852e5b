"""Deployment artefacts: the container entrypoint, gunicorn settings, and a small
kustomize renderer the tests use to check the Kubernetes manifests offline."""
