#!/usr/bin/env bash
# Issue 23 on one GPU, in one run (<= 6 minutes): the authors' code, configs/lra/listops.yaml
# eager and compiled (model.compile: reduce-overhead, CUDA graphs), on the same batches, for
# ListOps at batch 8 and 32 (L = 2048) and Path-X at batch 2 and 16 (L = 16384): step time,
# samples/s, peak memory, compile time, the memory-traffic floor and the launching ops of the
# eager step (python -m benchmarks.speed.gpu); then the launching ops per training step of
# the ListOps config, the fast overlay and the authors' model on the GPU's code path
# (python -m benchmarks.speed.ops --device cuda: batch 8, L = 512, for-each AdamW; issue 30).
#
#   OUT=/some/folder bash benchmarks/gpu/speed.sh      # from the repository root
#
# Needs: the authors' checkout at .authors/ (or SPEED_AUTHORS=path; without one their side is
# skipped and the speed-ups are not reported), einops and omegaconf for it (from .whl/ when
# missing), torch with CUDA and a C compiler for inductor. The package runs from src/.
# Writes: $OUT/speed.log (name=value lines), $OUT/speed.md (the tables), the gpu_speed and ops
# sections of benchmarks/RESULTS.md and benchmarks/results/{gpu_speed,ops}_cuda.json.
#
# Sizing (an estimate: no GPU was lent to the session that wrote this). Eager steps take
# 50-100 ms (ListOps, measured 29 Nov: 51 ms at batch 8) up to ~1-2 s (Path-X batch 16);
# 3 warm-up + 10 timed steps per side and case is under 1 minute of stepping in all. The
# compiles dominate: 4 static shapes, each compiled once (about 30-90 s each for this graph).
# The script stops at SPEED_TIME_LIMIT (default 330 s); cases run in the order ListOps b8,
# b32, Path-X b2, b16, each printed as it finishes, so a cut run keeps the first cases.
# Check the logic on a CPU first (tiny sizes, a cheap compile backend):
#   SPEED_QUICK=1 OUT=/tmp/speed bash benchmarks/gpu/speed.sh
set -uo pipefail
: "${OUT:?set OUT to the output folder}"
export PYTHONUNBUFFERED=1
mkdir -p "$OUT"
PY=${PYTHON:-python3}
AUTHORS=$(realpath -m "${SPEED_AUTHORS:-.authors}")
LIMIT=${SPEED_TIME_LIMIT:-330}
EXTRA=()
OPS_EXTRA=(--device cuda)
if [ "${SPEED_QUICK:-0}" = 1 ]; then
  EXTRA=(--device cpu --quick --no-write --repeats 2 --warmup 1 --compile-backend aot_eager)
  OPS_EXTRA=(--device cpu --no-write --length 64)
fi
if ! "$PY" -c "import einops, omegaconf" 2>/dev/null && [ -d .whl ]; then
  SITE=$(mktemp -d)
  for wheel in .whl/*.whl; do
    "$PY" -m pip install -q --no-index --no-deps --no-compile --target "$SITE" "$wheel" \
      >> "$OUT/setup.log" 2>&1 || echo "skipped $wheel" >> "$OUT/setup.log"
  done
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
timeout --signal=TERM --kill-after=10 "$LIMIT" "$PY" -m benchmarks.speed.gpu --authors "$AUTHORS" \
  "${EXTRA[@]}" "$@" 2>&1 | tee "$OUT/speed.log"
status=${PIPESTATUS[0]}
echo "benchmarks.speed.gpu exit status $status" | tee -a "$OUT/speed.log"
[ -d "$AUTHORS/src" ] && OPS_EXTRA+=(--authors "$AUTHORS")
timeout --signal=TERM --kill-after=10 120 "$PY" -m benchmarks.speed.ops \
  --config configs/lra/listops.yaml "${OPS_EXTRA[@]}" 2>&1 | tee -a "$OUT/speed.log"
ops_status=${PIPESTATUS[0]}
echo "benchmarks.speed.ops exit status $ops_status" | tee -a "$OUT/speed.log"
for section in gpu_speed:cuda ops:cuda; do
  sed -n "/<!-- $section begin -->/,/<!-- $section end -->/p" benchmarks/RESULTS.md
done > "$OUT/speed.md"
[ "$status" = 0 ] && status=$ops_status
exit "$status"
