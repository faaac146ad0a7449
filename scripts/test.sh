#!/usr/bin/env bash
# Installs everything the tests need (Python packages; Debian's chromium and firefox-esr when
# missing) and runs the linters, the type checker and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
# Debian's chromium and firefox-esr (browser tests), coturn (the TURN test), iproute2 (the weak-link,
# Firefox and nodes tests' network namespaces), nodejs (the page's unit tests in tests/js), GStreamer's
# webrtcbin with the system Python's gi (the webrtcbin publisher,
# tests/fixtures/webrtcbin_publisher.py), fonts-nanum (Hangul in the Korean page's screenshots),
# redis-server (the meeting snapshots mirrored in Redis, the nodes test; the tests start their own).
# apt waits for a lock another apt holds.
APT=(apt-get -o DPkg::Lock::Timeout=600)
PACKAGES=(chromium firefox-esr coturn iproute2 nodejs gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-nice python3-gi gir1.2-gst-plugins-base-1.0
  gir1.2-gst-plugins-bad-1.0 gir1.2-nice-0.1 fonts-nanum redis-server)
have_gstreamer() {
  /usr/bin/python3 -c "import gi; gi.require_version('GstWebRTC', '1.0'); \
gi.require_version('GstSdp', '1.0'); gi.require_version('Nice', '0.1')" >/dev/null 2>&1
}
if ! command -v chromium >/dev/null 2>&1 || ! command -v firefox-esr >/dev/null 2>&1 \
    || ! command -v turnserver >/dev/null 2>&1 || ! command -v tc >/dev/null 2>&1 \
    || ! command -v node >/dev/null 2>&1 || ! have_gstreamer \
    || ! command -v redis-server >/dev/null 2>&1 \
    || ! [ -e /usr/share/fonts/truetype/nanum/NanumGothic.ttf ]; then
  if [ "$(id -u)" = 0 ]; then
    "${APT[@]}" update -qq
    DEBIAN_FRONTEND=noninteractive "${APT[@]}" install -y -qq "${PACKAGES[@]}" >/dev/null
  else
    echo "Missing: run 'sudo apt-get install ${PACKAGES[*]}' first" >&2
    exit 1
  fi
fi
bash scripts/setup.sh test
.venv/bin/ruff check src tests benchmarks
.venv/bin/ruff format --check src tests benchmarks
.venv/bin/mypy
.venv/bin/pytest -q -p no:cacheprovider --durations=30 "$@"
