#!/usr/bin/env bash
# Builds confsfu's C modules with AddressSanitizer and UndefinedBehaviorSanitizer into a tree of
# their own (build/sanitize, or $SANITIZE_DIR), then runs the unit tests of the native modules
# and fuzzing passes of the intake and the pump (benchmarks/fuzz_native.py) and of the C RTP
# and VP8 readers (benchmarks/fuzz_parsers.py, a tenth as many inputs) against that build,
# with libasan preloaded into the project's Python. Any sanitizer report fails the run.
#
#   bash scripts/sanitize.sh [--inputs N] [pytest arguments...]
#
# --inputs: datagrams per way into the intake in the fuzzing pass (default 100000; 0 skips the
# fuzzing).
# The everyday build (.venv, the in-place modules) is left as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
OUT=${SANITIZE_DIR:-$ROOT/build/sanitize}
INPUTS=100000
if [ "${1:-}" = "--inputs" ]; then
  INPUTS=$2
  shift 2
fi
TESTS=(tests/unit/test_wire.py tests/unit/test_fan_out.py tests/unit/test_intake.py
  tests/unit/test_pump.py tests/unit/test_seal.py tests/unit/test_native_misuse.py
  tests/unit/test_forwarding_slot.py tests/unit/test_forwarding_temporal.py
  tests/unit/test_forwarding_reception.py tests/unit/test_bandwidth_meter.py
  tests/unit/test_fast_parsers.py tests/unit/test_core_native.py
  tests/unit/test_no_index_reuse.py)

# A copy of the sources (tracked files and the working tree's changes), built in place there.
rm -rf "$OUT"
mkdir -p "$OUT"
git ls-files -co --exclude-standard -z -- setup.py pyproject.toml src tests benchmarks \
  | xargs -0 cp --parents -t "$OUT"
SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
(
  cd "$OUT"
  CFLAGS="$SAN -g -O1" LDSHARED="${CC:-gcc} -shared $SAN" \
    "$PYTHON" setup.py -q build_ext --inplace >build.log 2>&1 || { cat build.log; exit 1; }
)

LIBASAN=$("${CC:-gcc}" -print-file-name=libasan.so)
export LD_PRELOAD=$LIBASAN
# Python frees little at exit and keeps its own arenas: leaks are not what is looked for here.
# PYTHONMALLOC=malloc puts every Python object on malloc, where ASan sees a use after free.
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export PYTHONMALLOC=malloc
export PYTHONPATH=$OUT/src
cd "$OUT"
"$PYTHON" - <<'EOF'
import importlib, os, sys
out = os.environ["PYTHONPATH"]
for name in ("confsfu.forwarding._slot", "confsfu.forwarding._reception", "confsfu.rtp._fast",
             "confsfu.bandwidth._counts", "confsfu.server._wire"):
    path = importlib.import_module(name).__file__
    assert path.startswith(out), f"{name} comes from {path}, not the sanitized build"
print("sanitized build:", out)
EOF
"$PYTHON" -m pytest -q -p no:cacheprovider -p no:randomly "${TESTS[@]}" "$@"
if [ "$INPUTS" -gt 0 ]; then
  "$PYTHON" benchmarks/fuzz_native.py --inputs "$INPUTS"
  # The C readers of RTP and VP8 (rtp/_fast.c), held to the Python parsers by hypothesis.
  "$PYTHON" benchmarks/fuzz_parsers.py --examples $((INPUTS / 10 + 1)) --only rtp --only vp8
fi
echo "no sanitizer report"
