#!/usr/bin/env bash
# Installs what taskwire needs on a Debian/Ubuntu machine that has Node/npm: redis-server (and with
# --test, chromium for the browser tests and faketime for the clock-skew tests) from apt when missing,
# then the npm packages (Bun included).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
if [[ "${1:-}" == "--test" ]]; then
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v faketime >/dev/null 2>&1 || missing+=(faketime)
fi
if ((${#missing[@]})); then
  sudo=""
  if [[ "$(id -u)" != 0 ]]; then
    command -v sudo >/dev/null 2>&1 || { echo "setup: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
    sudo=sudo
  fi
  echo "setup: installing ${missing[*]} with apt-get (this can take a minute)..."
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  echo "setup: installed ${missing[*]}"
fi

if [[ -f package-lock.json ]]; then
  echo "setup: npm ci..."
  npm ci --no-audit --no-fund --loglevel=error
else
  echo "setup: npm install..."
  npm install --no-audit --no-fund --loglevel=error
fi
echo "setup: ready (bun $(node_modules/.bin/bun --version), $(redis-server --version | cut -d' ' -f3))"
