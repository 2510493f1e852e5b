#!/usr/bin/env bash
# `make image`: the project image, built with podman from deploy/Dockerfile on
# the Debian base of deploy/podman/base.sh (cached), then its size.
#   IMAGE=devops-checkout:local deploy/podman/image.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
export CONTAINERS_CONF="${CONTAINERS_CONF:-$PWD/deploy/podman/containers.conf}"
image="${IMAGE:-devops-checkout:local}"

missing=""
for tool in podman mmdebstrap runc; do
  command -v "$tool" >/dev/null || missing="$missing $tool"
done
if [ -n "$missing" ]; then
  echo "make image: missing:$missing. Install them: apt-get install -y podman buildah runc mmdebstrap podman-compose" >&2
  exit 1
fi

start=$(date +%s)
base="$(deploy/podman/base.sh)"
# The machine's CA bundle, for pip behind a TLS-inspecting proxy: a build secret,
# so it is in no layer of the image.
ca=/etc/ssl/certs/ca-certificates.crt
podman build --quiet -f deploy/Dockerfile --ignorefile deploy/Dockerfile.dockerignore \
  --build-arg "PYTHON_IMAGE=$base" ${ca:+--secret "id=build-ca,src=$ca"} \
  -t "$image" . >/dev/null
size=$(podman image inspect --format '{{.Size}}' "$image")
echo "$image: $((size / 1000000)) MB on $base, built in $(( $(date +%s) - start )) s"
