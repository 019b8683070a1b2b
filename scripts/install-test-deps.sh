#!/usr/bin/env bash
# The test suite drives real tools: registry clients, buildah and podman with runc (build executors), a
# reference registry, containerd, PostgreSQL and Redis, and git, ssh-keygen, curl and openssl for build
# triggers, and sshd for a throwaway git server that builds clone from with a deploy key.
# Installs the missing ones from Debian when running as root; otherwise says what to install.
set -euo pipefail
packages=(skopeo buildah podman runc containerd docker-registry postgresql redis-server git openssh-client openssh-server curl openssl)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
[ "${#missing[@]}" -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "The tests need these Debian packages: ${missing[*]}" >&2
  echo "Install them with: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
echo "Installing test tools: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
