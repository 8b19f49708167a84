# Sourced by run_gpu.sh and run_gpu_flows.sh (not run on its own): the shared start of a prepared run on a
# lent GPU machine. Installs the carried wheels (.whl/) when present, points the package at the carried SSP
# table (.gpu/ssp_bc03.h5), sets OUT, PY and LOG, and logs the card and the JAX devices.
export PYTHONUNBUFFERED=1
if [ -d .whl ] && [ -z "${NO_WHL:-}" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
fi
# several processes share the GPU: no 75% preallocation per process
export XLA_PYTHON_CLIENT_PREALLOCATE=${XLA_PYTHON_CLIENT_PREALLOCATE:-false}
export SEDFLOW_JAX_SSP=${SEDFLOW_JAX_SSP:-$PWD/.gpu/ssp_bc03.h5} SEDFLOW_JAX_CACHE=/tmp/sfcache
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
PY=${PY:-python3}
LOG="$OUT/gpu_log.txt"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tee "$LOG"
$PY -c "import jax; print('jax', jax.__version__, jax.devices())" 2>&1 | tee -a "$LOG"
