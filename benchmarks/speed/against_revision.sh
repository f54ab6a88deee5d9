#!/usr/bin/env bash
# The training step of this checkout against an earlier revision's, on the same machine:
# `python -m benchmarks.speed.official` (the authors' ListOps step, configs/lra/listops.yaml
# and the fast overlay, timed round-robin in one process) run ROUNDS times from each tree,
# alternating, so background load hits both alike. Prints every run's name=value lines
# prefixed with the side and round, then the medians per side. The ratio to the authors'
# step, measured in the same process, is the number that survives a shared machine best.
#
#   bash benchmarks/speed/against_revision.sh REV [ROUNDS] [-- official's options]
#   bash benchmarks/speed/against_revision.sh 0e545ea 4 -- --authors .authors --threads 2
#
# Needs: the authors' checkout (--authors, as benchmarks.speed.official) and git. The
# revision is checked out as a worktree in a temporary folder and removed at the end.
set -euo pipefail
REV=${1:?usage: against_revision.sh REV [ROUNDS] [-- options of benchmarks.speed.official]}
ROUNDS=${2:-4}
shift $(($# < 2 ? $# : 2))
[ "${1:-}" = "--" ] && shift
PY=${PYTHON:-python3}
HERE=$(git rev-parse --show-toplevel)
BEFORE=$(mktemp -d)
trap 'git -C "$HERE" worktree remove --force "$BEFORE" >/dev/null 2>&1 || true' EXIT
git -C "$HERE" worktree add -f --detach "$BEFORE" "$REV" >/dev/null 2>&1
LOG=$(mktemp)
for round in $(seq "$ROUNDS"); do
  for side in before after; do
    tree=$HERE
    [ "$side" = before ] && tree=$BEFORE
    (cd "$tree" && PYTHONPATH="$tree/src" "$PY" -m benchmarks.speed.official --device cpu \
      --no-write "$@" 2>/dev/null | grep -E '=|^skipped' | sed "s/^/$side $round /") | tee -a "$LOG"
  done
done
"$PY" - "$LOG" "$REV" <<'EOF'
import statistics, sys
values = {}
for line in open(sys.argv[1]):
    side, _, pair = line.split(maxsplit=2)
    if "=" not in pair:  # "skipped: ...": said above
        continue
    name, value = pair.strip().split("=")
    values.setdefault((side, name), []).append(float(value))
for (side, name), runs in sorted(values.items()):
    label = f"{side} ({sys.argv[2]})" if side == "before" else side
    print(f"median {label} {name}={statistics.median(runs):.4g} over {len(runs)} runs")
EOF
