#!/usr/bin/env bash
# One device session (a machine with one GPU and 16 cores, no network), from the repo root:
#
#     OUT=/path/to/output bash benchmarks/gpu/run_all.sh
#
# Side by side, each on its own cores: the parity runs (benchmarks/gpu/parity.sh: the authors'
# ListOps model and ours on the GPU, cores 2-7), the learning benchmark (benchmarks/gpu/
# learning.sh, CPU, cores 8-15), and the CPU speed benchmarks pinned to cores 0-1 (a 2-core
# machine that nothing else runs on, the GPU hidden: the setting of issue 12's ratios). Wheels the machine
# lacks come from .whl/ and the authors' code from .authors/ (a checkout of
# NeuroCompLab-psu/PSpikeSSMs), both carried beside the tree. Every part writes its log and
# results under $OUT; a part that overruns its time is stopped and the rest still report.
set -u
OUT=${OUT:?set OUT to an output folder}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PSPIKESSM_QUIET=1
START=$(date +%s)
left() { echo $(( ${BUDGET_S:-550} - ($(date +%s) - START) )); }

if [ -d .whl ] && [ -z "${SKIP_WHEELS:-}" ]; then  # SKIP_WHEELS=1: a machine that has them
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
python3 - <<'PY' 2>&1 | tee "$OUT/versions.txt"
import sys, torch, lightning, jsonargparse, torchmetrics
print(sys.version.split()[0], "torch", torch.__version__, "cuda", torch.cuda.is_available(),
      "lightning", lightning.__version__, "jsonargparse", jsonargparse.__version__,
      "torchmetrics", torchmetrics.__version__)
import pspikessm.cli  # the package imports with the machine's versions
PY

for part in parity learning; do
  script="benchmarks/gpu/$part.sh"
  [ -f "$script" ] || continue
  cores=$([ "$part" = parity ] && echo 2-7 || echo 8-15)
  # learning.sh: 600 steps and 400 s of training fit beside the parity runs (its header)
  (OUT="$OUT/$part" PARITY_TIME_LIMIT=${PARITY_TIME_LIMIT:-420} LEARNING_STEPS=${LEARNING_STEPS:-600} LEARNING_TRAIN_S=${LEARNING_TRAIN_S:-400} timeout $(( $(left) - 20 )) taskset -c "$cores" bash "$script" \
     >"$OUT/$part.log" 2>&1; echo "rc=$?" >>"$OUT/$part.log") &
done

cpu_bench() {  # name, then the command; each on cores 0-1 with two torch threads
  local name=$1; shift
  local limit=$(( $(left) - 30 ))
  if [ "$limit" -lt 30 ]; then echo "$name: skipped, $(left) s left" >>"$OUT/cpu.log"; return; fi
  echo "== $name ($limit s at most)" >>"$OUT/cpu.log"
  CUDA_VISIBLE_DEVICES="" timeout "$limit" taskset -c 0,1 python3 "$@" >>"$OUT/cpu.log" 2>&1
  echo "rc=$?" >>"$OUT/cpu.log"
}
quickstart() {  # the README's second command, timed end to end on cores 0-1
  local begin=$(date +%s)
  echo "== quickstart" >>"$OUT/cpu.log"
  CUDA_VISIBLE_DEVICES="" timeout 300 taskset -c 0,1 python3 -m pspikessm fit \
    --config configs/quickstart.yaml >"$OUT/quickstart.log" 2>&1
  echo "rc=$? quickstart_wall_s=$(( $(date +%s) - begin ))" >>"$OUT/cpu.log"
}
quickstart
cpu_bench train -m benchmarks.speed.train --threads 2 --repeats 5 --breakdown
[ -d .authors ] && cpu_bench official -m benchmarks.speed.official --authors .authors \
  --device cpu --threads 2 --repeats 3
cpu_bench lif -m benchmarks.speed.lif --device cpu --threads 2 --lengths 1024 4096 --repeats 3
cpu_bench block -m benchmarks.speed.block --threads 2 --repeats 5

wait
gpu_bench() {  # name, then the command; on the GPU once the parity runs have let go of it
  local name=$1; shift
  local limit=$(( $(left) - 15 ))
  if [ "$limit" -lt 45 ]; then echo "$name: skipped, $(left) s left" >>"$OUT/gpu.log"; return; fi
  echo "== $name ($limit s at most)" >>"$OUT/gpu.log"
  timeout "$limit" taskset -c 0-7 python3 "$@" >>"$OUT/gpu.log" 2>&1
  echo "rc=$?" >>"$OUT/gpu.log"
}
gpu_bench train -m benchmarks.speed.train --skip-pathx --breakdown --repeats 10 --warmup 3
[ -d .authors ] && gpu_bench official -m benchmarks.speed.official --authors .authors \
  --device cuda --repeats 10 --warmup 3
cp -r benchmarks/RESULTS.md benchmarks/results "$OUT/" 2>/dev/null
echo "done in $(( $(date +%s) - START )) s" | tee -a "$OUT/cpu.log"
