#!/usr/bin/env bash
# Run the benchmark suite on one GPU inside one ~10-minute device lease, with no network.
#
# Usage, from the repository root on the GPU machine:
#   bash benchmarks/gpu/run_gpu.sh
# Environment:
#   WHEELS  folder of wheel files to install first (default .whl; see benchmarks/gpu/README.md)
#   PYTHON  interpreter that has a CUDA jax (default python3)
#   OUT     if set, the results JSON, the figure and the logs are also copied there
#   BUDGET  seconds after which no new benchmark worker starts (default 400)
#   LIMIT   seconds after which the GPU plan is stopped (default 520; results so far are kept)
set -uo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
WHEELS=${WHEELS:-.whl}
SITE=${SITE:-/tmp/homeoplast-site}
BUDGET=${BUDGET:-400}
LIMIT=${LIMIT:-520}
LOGS=${OUT:-benchmarks/results}
export PYTHONUNBUFFERED=1

if compgen -G "$WHEELS/*.whl" >/dev/null; then
  echo "installing $(ls "$WHEELS"/*.whl | wc -l) wheels from $WHEELS (no index, no dependency resolution)"
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$SITE" "$WHEELS"/*.whl || exit 1
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
else
  echo "no wheels in $WHEELS: using the image's packages only"
fi
# The project runs from this checkout (first on the path): models/, infer/, benchmarks/ and
# the data/ folder that infer/ reads beside them.
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv || true
# fail fast (seconds, not the lease) if the image's packages cannot run the project
"$PY" - <<'PY' || exit 1
import importlib, jax
print("jax", jax.__version__, jax.devices())
for name in ("diffrax", "equinox", "numpyro", "optax", "arviz", "scipy", "roadrunner", "libsbml"):
    try:
        m = importlib.import_module(name)
        print(f"  {name} {getattr(m, '__version__', '')} ok")
    except Exception as err:  # noqa: BLE001
        print(f"  {name} MISSING: {err}")
if jax.default_backend() != "gpu":
    raise SystemExit("jax sees no GPU: install a CUDA jax (or use the image's python3)")
import infer.fit, models.population  # noqa: F401,E401  the project imports under this jax
print("project imports ok")
PY

# The peers (scipy, roadrunner) are CPU tools: run them on the host's cores beside the GPU plan.
stamp=$(date -u +%Y-%m-%d)
JAX_PLATFORMS=cpu timeout "$LIMIT" "$PY" -m benchmarks --quick --cases peers --no-plot \
  --label "${stamp}_gpu-host-cpu_peers" >"$LOGS/peers.log" 2>&1 &
peers=$!

timeout "$LIMIT" "$PY" -m benchmarks --gpu --budget-s "$BUDGET" 2>&1 | tee "$LOGS/gpu.log"
echo "GPU plan ended with status ${PIPESTATUS[0]}"
wait "$peers"; echo "peers ended with status $?"; tail -25 "$LOGS/peers.log"
if [[ -n "${OUT:-}" ]]; then
  gpu_json=$(ls -t benchmarks/results/*_gpu.json 2>/dev/null | head -1)
  for f in "$gpu_json" "${gpu_json%.json}.png" "benchmarks/results/${stamp}_gpu-host-cpu_peers.json"; do
    [[ -n "$f" && -f "$f" ]] && cp "$f" "$OUT"/ && echo "copied $f to $OUT"
  done
fi
