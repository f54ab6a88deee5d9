#!/usr/bin/env bash
# Issue 19 on one GPU: the authors' ListOps model and configs/lra/listops.yaml, 3 seeds each,
# trained side by side (6 processes on the one GPU) on the same generated ListOps, 3000 steps
# at batch 32, AdamW lr 8e-4 / wd 0.01 with each model's own SSM groups, 100 warm-up steps
# and a cosine to zero at step 3000; validation accuracy at steps 250, 500, 1000, 2000, 3000.
#
#   OUT=/some/folder bash benchmarks/gpu/parity.sh      # from the repository root
#
# Needs: the authors' checkout at .authors/ (NeuroCompLab-psu/PSpikeSSMs, HEAD 8f7a954);
# wheels of what the machine lacks (jsonargparse, omegaconf, ...) in .whl/ (used only when
# missing); torch with CUDA, lightning, torchmetrics, einops, numpy present. The package
# itself runs from src/ (PYTHONPATH), never installed. Run alone or by run_all.sh.
# Writes: $OUT/runs/<side>.seed<s>.json (rewritten after every evaluation, so a run cut short
# keeps its curve), $OUT/parity.log (progress), $OUT/parity.md (the table and name=value
# lines of --collect over whatever runs exist), $OUT/setup.log.
#
# Sizing (an estimate: no GPU was lent to the session that wrote this). On this project's
# busy 2-core CPU, one thread per run, a step at batch 32 took 0.9-3.1 s for ours and 3.0-6.0 s
# for the authors' model (PARITY_TINY runs; their pure-torch Cauchy kernel at l_max 2048). A
# step is a few hundred small kernels, so on the GPU it is bound by launches and Python, not by
# arithmetic: at 30-60 ms a step, 3000 steps take 90-180 s per run, the 6 runs side by side (one
# core each: run_all.sh gives this script 6) as long as the GPU is mostly idle between launches.
# Before training: the data (32,000 expressions, 38 s on the busy CPU), imports and model
# builds, ~60 s; 5 evaluations of 2000 sequences add a few seconds per run. parity.py is
# stopped at PARITY_TIME_LIMIT (default 330 s) whatever the real speed: every run keeps the
# evaluations it reached (step 1000's before step 2000's), and the table is made from them.
#
# Check the logic on a CPU first (seed 0 only, 20 steps, evaluations at 10 and 20):
#   PARITY_TINY=1 PARITY_AUTHORS=/path/to/PSpikeSSMs OUT=/tmp/parity-out \
#     bash benchmarks/gpu/parity.sh
# Other knobs: PARITY_DATA (data folder, default $TMPDIR/parity-listops), PARITY_TIME_LIMIT
# (seconds for parity.py), PYTHON.
set -uo pipefail
: "${OUT:?set OUT to the output folder}"
export PYTHONUNBUFFERED=1
mkdir -p "$OUT/runs"
STEPS=3000
EVAL_AT="250 500 1000 2000"  # and always the last step
DEVICE=cuda
LIMIT=${PARITY_TIME_LIMIT:-330}  # seconds of training for all runs together (~6 min in all)
SEEDS="0 1 2"
JOBS=6
if [ "${PARITY_TINY:-0}" = 1 ]; then
  STEPS=20 EVAL_AT="10" DEVICE=cpu LIMIT=${PARITY_TIME_LIMIT:-900} SEEDS=0 JOBS=2
fi
AUTHORS=${PARITY_AUTHORS:-.authors}
DATA=${PARITY_DATA:-${TMPDIR:-/tmp}/parity-listops}
PY=${PYTHON:-python3}
start=$(date +%s)

# The package runs from src/ (no install: an editable install would repoint whatever
# environment runs this); what the machine lacks comes from .whl/, installed one wheel at a
# time into a temporary folder (a wheel for another Python is skipped, not fatal), and only
# when missing (benchmarks/gpu/run_all.sh has installed them already).
if ! "$PY" -c "import jsonargparse, omegaconf" 2>/dev/null; then
  SITE=$(mktemp -d)
  for wheel in .whl/*.whl; do
    [ -f "$wheel" ] || continue
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$SITE" \
      "$wheel" >> "$OUT/setup.log" 2>&1 || echo "skipped $wheel" >> "$OUT/setup.log"
  done
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
if ! "$PY" -c "import jsonargparse, omegaconf, einops, pspikessm; print(pspikessm.__file__)" \
  >> "$OUT/setup.log" 2>&1; then
  echo "missing a dependency: see $OUT/setup.log" | tee "$OUT/parity.md"
  exit 1
fi
if [ ! -f "$AUTHORS/src/models/sequence/backbones/model.py" ]; then
  echo "no authors' checkout at $AUTHORS" | tee "$OUT/parity.md"
  exit 1
fi
echo "setup: $(( $(date +%s) - start )) s" >> "$OUT/parity.log"

# parity.py generates the data once (LRA grammar, lengths 20-200, depth up to 6: the same
# write_listops as `pspikessm make-listops`), then trains every (side, seed) in its own process.
# shellcheck disable=SC2086
timeout --signal=TERM --kill-after=10 "$LIMIT" "$PY" -m benchmarks.parity.run \
  --authors "$AUTHORS" --data-dir "$DATA" --device "$DEVICE" \
  --steps "$STEPS" --warmup 100 --eval-at $EVAL_AT --seeds $SEEDS --jobs "$JOBS" \
  --out-dir "$OUT/runs" >> "$OUT/parity.log" 2>&1
status=$?
echo "parity.py exit status $status after $(( $(date +%s) - start )) s" >> "$OUT/parity.log"

shopt -s nullglob
runs=("$OUT"/runs/*.json)
if [ ${#runs[@]} -eq 0 ]; then
  echo "no run recorded an evaluation (parity.py status $status): see parity.log" \
    | tee "$OUT/parity.md"
  exit 1
fi
{
  echo "# Parity runs ($STEPS steps, device $DEVICE, parity.py status $status)"
  echo
  "$PY" -m benchmarks.parity.run --collect "${runs[@]}"
} > "$OUT/parity.md" 2>> "$OUT/parity.log"
cat "$OUT/parity.md"
exit "$status"
