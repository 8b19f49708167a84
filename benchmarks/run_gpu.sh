#!/usr/bin/env bash
# One prepared run of the benchmarks on a lent GPU machine (see README: "GPU figures").
# Expects: .whl/ (speclite, astropy, pyerfa, astropy-iers-data, flowjax, platformdirs, dsps wheels)
# and .gpu/ssp_bc03.h5 (the default BC03 table, built here) carried along; writes into $OUT.
set -u
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD
export SEDFLOW_JAX_SSP=$PWD/.gpu/ssp_bc03.h5 SEDFLOW_JAX_CACHE=/tmp/sfcache
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu_log.txt"
python3 -c "import jax; print(jax.__version__, jax.devices())" 2>&1 | tee -a "$OUT/gpu_log.txt"
run() { local t=$1; shift; echo "== $* (limit ${t}s)" | tee -a "$OUT/gpu_log.txt"; timeout "$t" "$@" 2>&1 | tail -n 40 | tee -a "$OUT/gpu_log.txt"; }
run ${T_MODEL:-200} python3 benchmarks/bench_model.py --device gpu --out "$OUT" ${MODEL_ARGS:-}
run ${T_SIM:-120} python3 benchmarks/bench_simulate.py --n 1000000 --results "$OUT/bench_simulate.json" ${SIM_ARGS:-}
if [ -f benchmarks/bench_anpe.py ]; then run ${T_ANPE:-200} python3 benchmarks/bench_anpe.py --device gpu --out "$OUT" ${ANPE_ARGS:-}; fi
ls -la "$OUT"
