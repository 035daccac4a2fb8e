#!/usr/bin/env bash
# Run every artifact-evaluation script; outputs land in ae/out/<figure>/.
#   bash ae/run_all.sh           full set (the paper's three configurations, B up to 256)
#   bash ae/run_all.sh --quick   fewer models/batches/layers: a smoke run of every script
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PY="${PYTHON:-$HERE/../.venv/bin/python}"
[ -x "$PY" ] || PY=python3
QUICK=()
if [ "${1:-}" = "--quick" ]; then QUICK=(--quick); fi
mkdir -p "$HERE/out"
LOG="$HERE/out/run_all${QUICK:+_quick}.log"
: > "$LOG"
for fig in characterization memory_bound pareto pim_util pim_channels table_convergence gap latency_budget mixed_prefill colocated_prefill replay exec_models trimoe energy_front; do
  t0=$(date +%s.%N)
  "$PY" "$HERE/fig_${fig}.py" "${QUICK[@]}" 2>&1 | tee -a "$LOG"
  t1=$(date +%s.%N)
  printf '%-16s %6.1f s\n' "$fig" "$(echo "$t1 - $t0" | bc)" | tee -a "$LOG"
done
