#!/usr/bin/env bash
# One prepared run on a lent GPU machine: train the default ANPE there, then benchmark
# model, simulator and ANPE on the GPU. Expects .whl/ (speclite, astropy, pyerfa,
# astropy-iers-data, flowjax, platformdirs, dsps wheels) and .gpu/ssp_bc03.h5 carried along.
# Writes at most 8 files into $OUT (the device tool's limit). Knobs: env vars below.
set -u
source "$(dirname "$0")/gpu_prelude.sh"
mkdir -p "$OUT/default_flow" /tmp/bench
run() { local t=$1; shift; echo "== $* (limit ${t}s) $(date +%T)" | tee -a "$LOG"; timeout "$t" "$@" 2>&1 | grep -v '^\s*$' | tail -n 25 | tee -a "$LOG"; }
[ -z "${SKIP_TRAIN:-}" ] && run ${T_TRAIN:-330} $PY scripts/train_default_flow.py --work /tmp/anpe --ship "$OUT/default_flow" --no-validate \
  --n-sim ${N_SIM:-2000000} --layers ${LAYERS:-10} --width ${WIDTH:-256} --batch ${BATCH:-2048} \
  --epochs ${EPOCHS:-40} --max-seconds ${MAX_S:-240}
rm -f "$OUT/default_flow/training_curve.png"  # rebuilt from history.json at home (file-count limit)
[ -z "${SKIP_ANPE:-}" ] && run ${T_ANPE:-90} $PY benchmarks/bench_anpe.py --model "$OUT/default_flow" --out /tmp/bench ${ANPE_ARGS:-}
run ${T_MODEL:-150} $PY benchmarks/bench_model.py --device ${MODEL_DEVICE:-gpu} --out /tmp/bench ${MODEL_ARGS:-}
[ -z "${SKIP_SIM:-}" ] && run ${T_SIM:-90} $PY benchmarks/bench_simulate.py --n ${SIM_N:-1000000} --results /tmp/bench/bench_simulate.json ${SIM_ARGS:-}
cp /tmp/bench/*.json "$OUT/" 2>/dev/null
ls -la "$OUT" "$OUT/default_flow" | tee -a "$LOG"
