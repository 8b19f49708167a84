#!/usr/bin/env bash
# One prepared run on a lent GPU: simulate one training set, train two candidate flows side by side
# on the one GPU (small MADE passes are latency-bound, so two processes share it well), then measure
# each flow (and the shipped one) as an importance-sampling proposal (benchmarks/anpe_importance.py).
# Returns $OUT/flows.tgz (both models, logs, JSON) and $OUT/gpu_log.txt. Expects .whl/ and
# .gpu/ssp_bc03.h5 carried (see run_gpu.sh). Knobs: env vars below.
set -u
source "$(dirname "$0")/gpu_prelude.sh"
W=/tmp/flows; mkdir -p $W/res
N_SIM=${N_SIM:-4000000}
echo "== simulate $N_SIM $(date +%T)" | tee -a "$LOG"
timeout ${T_SIM:-150} $PY -m sedflow_jax.cli.main simulate --n $N_SIM --seed 0 --chunk 65536 --no-progress \
  --out $W/train_$N_SIM.h5 2>&1 | tail -n 8 | tee -a "$LOG"
echo "== train $(date +%T)" | tee -a "$LOG"
train() {  # name, then architecture flags
  local name=$1; shift
  timeout ${T_TRAIN:-360} $PY scripts/train_default_flow.py --work $W --run $W/run_$name --ship $W/res/$name \
    --no-validate --n-sim $N_SIM --batch ${BATCH:-8192} --max-seconds ${MAX_S:-290} "$@" > $W/res/train_$name.log 2>&1
  tail -n 4 $W/res/train_$name.log | tee -a "$LOG"
}
train ${A_NAME:-affine10x512} --layers 10 --width 512 --epochs ${A_EPOCHS:-60} &
train ${B_NAME:-rqs10x256} --layers 10 --width 256 --transformer rqs --knots 8 --interval 6 --epochs ${B_EPOCHS:-45} &
wait
echo "== importance sampling $(date +%T)" | tee -a "$LOG"
models=""; for d in $W/res/*/; do [ -f $d/flow.eqx ] && models="$models --model $d"; done
timeout ${T_IS:-150} $PY benchmarks/anpe_importance.py --n-gal ${N_GAL:-20} --n-proposal ${N_PROP:-1048576} --model default $models \
  --chunk 65536 --tag _gpu --out $W/res 2>&1 | grep -v '^\s*$' | tail -n 8 | tee -a "$LOG"
rm -f $W/res/*/training_curve.png
tar czf "$OUT/flows.tgz" -C $W res
ls -la "$OUT" | tee -a "$LOG"
