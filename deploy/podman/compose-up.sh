#!/usr/bin/env bash
# `make compose-up`: deploy/compose.yaml under podman-compose with the stand-ins
# of compose.standins.yaml, started in stages. bookworm's podman-compose (1.0.3)
# ignores `condition: service_healthy` and mis-orders some dependency graphs, and
# without systemd podman runs healthchecks only when asked; so each stage is
# started with --no-deps and its healthchecks are run here until they pass.
#   deploy/podman/compose-up.sh         up (writes deploy/.env with fresh secrets if there is none)
#   deploy/podman/compose-up.sh down    stop and remove the containers (DOWN_ARGS=-v: the data too)
set -euo pipefail
cd "$(dirname "$0")/../.."
export CONTAINERS_CONF="${CONTAINERS_CONF:-$PWD/deploy/podman/containers.conf}"
project=devops-checkout
compose=(podman-compose -p "$project" -f deploy/compose.yaml -f deploy/podman/compose.standins.yaml)

if [ "${1:-up}" = down ]; then
  "${compose[@]}" down ${DOWN_ARGS:-} >/dev/null 2>&1
  echo "compose: $project is down"
  exit 0
fi
command -v podman-compose >/dev/null || {
  echo "compose-up: podman-compose is missing. Install it: apt-get install -y podman-compose" >&2; exit 1; }

# podman-compose reads deploy/.env (next to the compose file), as `docker compose --env-file` would.
if [ ! -f deploy/.env ]; then
  secret() { python3 -c "import secrets; print(secrets.token_hex(32))"; }
  sed -e "s/^POSTGRES_PASSWORD=$/POSTGRES_PASSWORD=$(secret)/" -e "s/^AUTH_SECRET=$/AUTH_SECRET=$(secret)/" \
      -e "s/^STRIPE_WEBHOOK_SECRET=$/STRIPE_WEBHOOK_SECRET=whsec_$(secret)/" deploy/.env.example > deploy/.env
  echo "compose: wrote deploy/.env with fresh secrets"
fi

base="$(deploy/podman/base.sh)"
# Rebuilt every time: podman's layer cache makes that seconds once they exist.
for standin in postgres redis mailcatcher; do
  image="$(sed -n "s/^ *image: \(.*standin-$standin:.*\)/\1/p" deploy/podman/compose.standins.yaml)"
  podman build --quiet --build-arg "BASE=$base" \
    -f "deploy/podman/standins/$standin.Containerfile" -t "$image" deploy/podman/standins >/dev/null
done

container() { podman ps -a --filter "label=com.docker.compose.project=$project" \
  --filter "label=com.docker.compose.service=$1" --format '{{.Names}}' | head -1; }

healthy() {  # service...: run each one's healthcheck until it passes (120 s)
  for service in "$@"; do
    name="$(container "$service")"
    for _ in $(seq 1 120); do
      podman healthcheck run "$name" >/dev/null 2>&1 && continue 2
      sleep 1
    done
    echo "compose-up: $service did not become healthy; podman logs $name:" >&2
    podman logs --tail 30 "$name" >&2
    exit 1
  done
}

completed() {  # service: wait for a one-shot to exit 0
  name="$(container "$1")"
  status="$(podman wait "$name")"
  [ "$status" = 0 ] || { echo "compose-up: $1 exited $status:" >&2; podman logs --tail 30 "$name" >&2; exit 1; }
}

stage() { "${compose[@]}" up -d --no-build --no-deps "$@" >/dev/null 2>&1 || "${compose[@]}" up -d --no-build --no-deps "$@"; }

start=$(date +%s)
stage postgres redis mailcatcher localstripe
healthy postgres redis mailcatcher localstripe
stage migrate
completed migrate
stage checkout trials notifications dashboard
healthy checkout trials notifications dashboard
stage stripe-webhook
completed stripe-webhook
stage worker deliver
echo "compose: $project up in $(( $(date +%s) - start )) s: checkout http://localhost:8001, trials :8002," \
     "notifications :8003, dashboard :8004, localstripe :8420, mail http://localhost:8025"
