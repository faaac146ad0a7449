#!/usr/bin/env bash
# Creates .venv and installs confsfu into it (with the test tools when given "test").
# confsfu has one small C module (the hot path's send side): it needs a C compiler and Python's
# headers, installed from Debian here when missing and run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
have_headers() {
  python3 -c 'import os, sysconfig; raise SystemExit(not os.path.exists(
      os.path.join(sysconfig.get_paths()["include"], "Python.h")))'
}
if ! command -v cc >/dev/null 2>&1 || ! have_headers; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc libc6-dev python3-dev >/dev/null
  else
    echo "Missing a C compiler or Python's headers: install gcc and python3-dev first" >&2
    exit 1
  fi
fi
python3 -m venv .venv
.venv/bin/pip install --quiet --upgrade pip
if [ "${1:-}" = "test" ]; then
  .venv/bin/pip install --quiet -e ".[test]"
else
  .venv/bin/pip install --quiet -e .
fi
