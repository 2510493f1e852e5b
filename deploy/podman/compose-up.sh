#!/usr/bin/env bash
# `make compose-up`: deploy/compose.yaml under podman-compose with the stand-ins
# of compose.standins.yaml, started in stages. bookworm's podman-compose (1.0.3)
# ignores `condition: service_healthy` and mis-orders some dependency graphs, and
# without systemd podman runs healthchecks only when asked; so each stage is
# started with --no-deps and its healthchecks are run here until they pass.
#   deploy/podman/compose-up.sh         up (writes deploy/.env with fresh secrets and service keys, and
#                                       deploy/oidc-standin/ with a certificate, if there are none)
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

# The app image: deploy/.env's APP_IMAGE (podman-compose prefers it to the environment's), else
# APP_IMAGE, else compose.yaml's default; a new deploy/.env records the one used.
image="$(sed -n 's/^APP_IMAGE=//p' deploy/.env 2>/dev/null || true)"
image="${image:-${APP_IMAGE:-devops-checkout:local}}"
in_image() { podman run --rm --user 0 --entrypoint python "$@"; }

# podman-compose reads deploy/.env (next to the compose file), as `docker compose --env-file` would.
if [ ! -f deploy/.env ]; then
  secret() { python3 -c "import secrets; print(secrets.token_hex(32))"; }
  # The relays' Ed25519 keys (identity/auth.py), as .env lines: PEM newlines as \n.
  keys="$(in_image "$image" -c 'import json
from identity.auth import generate_service_key, public_key_pem
keys = {name: generate_service_key() for name in ("checkout", "trials")}
for name, key in keys.items():
    print(name.upper() + "_SERVICE_KEY=" + json.dumps(key))
print("SERVICE_PUBLIC_KEYS=" + chr(39) + json.dumps({n: public_key_pem(k) for n, k in keys.items()}) + chr(39))')"
  sed -e "s/^POSTGRES_PASSWORD=$/POSTGRES_PASSWORD=$(secret)/" -e "s/^AUTH_SECRET=$/AUTH_SECRET=$(secret)/" \
      -e "s/^STRIPE_WEBHOOK_SECRET=$/STRIPE_WEBHOOK_SECRET=whsec_$(secret)/" \
      -e "s/^OIDC_CLIENT_SECRET=$/OIDC_CLIENT_SECRET=$(secret)/" -e "s|^APP_IMAGE=.*|APP_IMAGE=$image|" \
      -e "/^CHECKOUT_SERVICE_KEY=$/d" -e "/^TRIALS_SERVICE_KEY=$/d" -e "/^SERVICE_PUBLIC_KEYS=$/d" \
      deploy/.env.example > deploy/.env
  echo "$keys" >> deploy/.env
  echo "compose: wrote deploy/.env with fresh secrets and service keys"
fi
# The stand-in identity provider's certificate, for the names it is reached by.
if [ ! -f deploy/oidc-standin/cert.pem ]; then
  mkdir -p deploy/oidc-standin
  in_image -v "$PWD/deploy/oidc-standin:/out" "$image" -m deploy.oidc_standin tls /out \
    --host oidc --host localhost --host 127.0.0.1
  echo "compose: wrote deploy/oidc-standin/ (the stand-in identity provider's certificate)"
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
stage postgres redis mailcatcher localstripe oidc
healthy postgres redis mailcatcher localstripe oidc
stage migrate
completed migrate
stage checkout trials notifications dashboard
healthy checkout trials notifications dashboard
stage stripe-webhook
completed stripe-webhook
stage worker deliver
echo "compose: $project up in $(( $(date +%s) - start )) s: checkout http://localhost:8001, trials :8002," \
     "notifications :8003, dashboard :8004, localstripe :8420, mail http://localhost:8025," \
     "sign-in (stand-in) https://localhost:8430"
