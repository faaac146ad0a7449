#!/usr/bin/env bash
# Installs confsfu and serves the embedded default configuration: open
# http://127.0.0.1:8080/?room=demo&name=YourCity in a browser on this machine.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/confsfu serve "$@"
