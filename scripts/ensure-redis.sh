#!/usr/bin/env bash
# Before `npm start`: Slipway needs Redis (REDIS_URL, a Redis on 127.0.0.1:6379, or a redis-server it
# starts itself). When there is none and redis-server is missing, installs it from Debian when running as
# root; otherwise leaves it to the gateway, which says what to install or set.
set -uo pipefail
[ -n "${REDIS_URL:-}" ] && exit 0
command -v redis-server >/dev/null && exit 0
(exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "Installing redis-server (Slipway starts its own under the data directory)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends redis-server >/dev/null
fi
exit 0
