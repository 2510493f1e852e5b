#!/usr/bin/env bash
# The image's base: Debian bookworm from Debian's archive (mmdebstrap), its own
# python3 (3.11), no docs or locales. Built once, tagged with a hash of this
# script, and reused by every `make image` until the script changes.
#   deploy/podman/base.sh            prints the base image's name (builds it if missing)
set -euo pipefail
cd "$(dirname "$0")"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$PWD/containers.conf}"

tag="localhost/devops-checkout-base:bookworm-$(sha256sum base.sh | cut -c1-12)"
if podman image exists "$tag"; then
  echo "$tag"
  exit 0
fi

mirror=http://deb.debian.org/debian
tar="$(mktemp -d)/base.tar"
trap 'rm -rf "$(dirname "$tar")"' EXIT
# python3-venv: the builder makes /opt/venv; python-is-python3: it runs `python`;
# passwd: groupadd/useradd for the app user; ca-certificates: TLS for pip and Stripe.
echo "base: mmdebstrap bookworm -> $tag" >&2
mmdebstrap --quiet --variant=apt --mode=root --format=tar \
  --include=python3,python3-venv,python-is-python3,ca-certificates,passwd \
  --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-include=/usr/share/locale/locale.alias' \
  bookworm "$tar" \
  "deb $mirror bookworm main" \
  "deb $mirror bookworm-updates main" \
  "deb http://deb.debian.org/debian-security bookworm-security main" >&2
# An imported root filesystem has no environment: give it what a Debian image has.
podman import --quiet \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["/bin/bash"]' \
  "$tar" "$tag" >/dev/null
echo "$tag"
