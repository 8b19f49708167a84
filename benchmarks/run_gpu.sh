#!/usr/bin/env bash
# One prepared run on a lent GPU machine: train the default ANPE there, then benchmark
# model, simulator and ANPE on the GPU. Expects .whl/ (speclite, astropy, pyerfa,
# astropy-iers-data, flowjax, platformdirs, dsps wheels) and .gpu/ssp_bc03.h5 carried along.
# Writes at most 8 files into $OUT (the device tool's limit). Knobs: env vars below.
set -u
export PYTHONUNBUFFERED=1
if [ -d .whl ] && [ -z "${NO_WHL:-}" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
fi
# child benchmark processes share the GPU: no 75% preallocation per process
export XLA_PYTHON_CLIENT_PREALLOCATE=${XLA_PYTHON_CLIENT_PREALLOCATE:-false}
export SEDFLOW_JAX_SSP=${SEDFLOW_JAX_SSP:-$PWD/.gpu/ssp_bc03.h5} SEDFLOW_JAX_CACHE=/tmp/sfcache
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT/default_flow" /tmp/bench
PY=${PY:-python3}
LOG="$OUT/gpu_log.txt"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tee "$LOG"
$PY -c "import jax; print('jax', jax.__version__, jax.devices())" 2>&1 | tee -a "$LOG"
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
