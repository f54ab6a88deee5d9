#!/usr/bin/env bash
# Issue 16 on a device machine: how fast P-SpikeSSM learns against its non-spiking twin, at the
# quickstart's learning rate (0.012) and at 0.004 (benchmarks/parity/learning.py). The training
# switches this script once compared measured no gain and are gone (docs/ablations.md). CPU only,
# one torch thread
# per run, LEARNING_JOBS runs at once (default: the cores this process may use, at most 10).
# From the repo root, with wheels the machine lacks in .whl/:
#
#     OUT=/path/to/output bash benchmarks/gpu/learning.sh
#     LEARNING_STEPS=20 LEARNING_SEEDS=0 OUT=/tmp/x bash benchmarks/gpu/learning.sh  # logic check
#
# Sizing (LEARNING_STEPS=450 for 8 jobs). Per step of one core (the screening logs: the spiking
# model 64-65 ms on a busy core, the non-spiking twin 0.75-0.8x): the 4 variants below cost
# 0.23 s per step of all of them, 0.7 S core-seconds for 3 seeds of S steps; the equal-time runs
# of the 2 non-spiking ones add 0.3 S (1.3 S steps each). Each of the 18 runs also costs about
# 14 s: interpreter and imports, building the model and loading the data, and 2 validations of
# 2000 expressions. (1.0 S + 250) / 8 cores = 90 s at S = 450; set-up, data, step timing and the
# report add about 30 s.
# Training stops at LEARNING_TRAIN_S (default 300 s, timing included) whatever is left: every
# finished run is in $OUT/learning_runs.json as it ends (seed by seed, so a cut loses the last
# seed's runs), and the table is made from the finished runs.
set -u
OUT=${OUT:?set OUT to an output folder}
mkdir -p "$OUT"
STEPS=${LEARNING_STEPS:-450}
SEEDS=${LEARNING_SEEDS:-0 1 2}
TRAIN_S=${LEARNING_TRAIN_S:-300}
CORES=$(nproc)
JOBS=${LEARNING_JOBS:-$(( CORES < 10 ? CORES : 10 ))}
START=$(date +%s)
export PYTHONUNBUFFERED=1 CUDA_VISIBLE_DEVICES="" OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

if ! python3 -c "import jsonargparse, omegaconf" 2>/dev/null; then
  [ -d .whl ] || { echo "jsonargparse/omegaconf missing and no .whl/ folder in $PWD"; exit 1; }
  SITE=$(mktemp -d)
  for wheel in .whl/*.whl; do  # one by one: a wheel for another Python is skipped, not fatal
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$SITE" \
      "$wheel" 2>/dev/null || echo "skipped $wheel (does not install here)"
  done
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
python3 -c "import sys, torch, lightning
print('python', sys.version.split()[0], 'torch', torch.__version__, 'lightning',
      lightning.__version__)" 2>&1 | tee "$OUT/versions.txt"
# pspikessm imports its declared dependencies (rich, tensorboard, matplotlib) at start-up.
if ! python3 -c "import pspikessm.cli" 2>"$OUT/import_error.txt"; then
  echo "pspikessm does not import here: $(tail -n 1 "$OUT/import_error.txt"); carry its wheel" \
    "in .whl/ (full traceback: $OUT/import_error.txt)" | tee -a "$OUT/versions.txt"
  exit 1
fi
rm -f "$OUT/import_error.txt"

ARGS=(
  --steps "$STEPS" --seeds $SEEDS --jobs "$JOBS" --eval-every "$STEPS"
  --timing-repeats 15 --cache "$OUT/learning_runs.json"
  --data-dir "$OUT/listops" --runs-dir "$(mktemp -d)"
  --variant nonspiking_lr4=configs/model/nonspiking.yaml,model.lr=0.004
  --variant lr4=model.lr=0.004
)
echo "cores $CORES, jobs $JOBS, steps $STEPS, seeds $SEEDS, training stops after $TRAIN_S s"
# Training and timing: stopped (the whole process group) after TRAIN_S s.
timeout -s INT -k 10 "$TRAIN_S" python3 -m benchmarks.parity.learning "${ARGS[@]}" --no-write \
  2>&1 | grep -v -e "^Seed set" -e "LeafSpec" -e "rank_zero_warn" -e "no spiking layers" \
    -e "^GPU available" -e "^TPU available" -e "litlogger" \
  | tee "$OUT/learning_train.log"
echo "training: rc ${PIPESTATUS[0]} after $(( $(date +%s) - START )) s" | tee -a "$OUT/learning_train.log"
# The table from the finished runs: RESULTS.md section and JSON, into $OUT.
python3 -m benchmarks.parity.learning "${ARGS[@]}" --report-only 2>&1 | tee "$OUT/learning.log"
cp benchmarks/RESULTS.md "$OUT/RESULTS.md"
cp benchmarks/results/learning_cpu.json "$OUT/" 2>/dev/null
echo "done in $(( $(date +%s) - START )) s" | tee -a "$OUT/learning.log"
