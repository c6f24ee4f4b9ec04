#!/usr/bin/env bash
# Run the whole benchmark suite on one GPU in under 10 minutes, with no network.
#
# Usage, from the repository root on the GPU machine:
#   bash benchmarks/gpu/run_gpu.sh
# Environment:
#   WHEELS  folder of wheel files to install first (default .whl; see benchmarks/gpu/README.md)
#   PYTHON  interpreter that has a CUDA jax (default python3)
#   OUT     if set, the results JSON and figure are also copied there
#   BUDGET  seconds after which no new benchmark worker starts (default 480)
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
WHEELS=${WHEELS:-.whl}
SITE=${SITE:-/tmp/homeoplast-site}
BUDGET=${BUDGET:-480}
export PYTHONUNBUFFERED=1

if compgen -G "$WHEELS/*.whl" >/dev/null; then
  echo "installing $(ls "$WHEELS"/*.whl | wc -l) wheels from $WHEELS (no index, no dependency resolution)"
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$SITE" "$WHEELS"/*.whl
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
else
  echo "no wheels in $WHEELS: using the repository checkout and the image's packages"
fi
# The checkout itself provides models/, infer/ and benchmarks/ (python -m runs from here).
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv || true
"$PY" - <<'PY'
import importlib, jax
print("jax", jax.__version__, jax.devices())
for name in ("diffrax", "equinox", "numpyro", "scipy", "roadrunner", "libsbml", "models"):
    try:
        m = importlib.import_module(name)
        print(f"  {name} {getattr(m, '__version__', '')} ok")
    except Exception as err:  # noqa: BLE001
        print(f"  {name} MISSING: {err}")
if jax.default_backend() != "gpu":
    raise SystemExit("jax sees no GPU: install a CUDA jax (or use the image's python3)")
PY

timeout 570 "$PY" -m benchmarks --gpu --budget-s "$BUDGET" || echo "benchmark run ended with status $?"
latest=$(ls -t benchmarks/results/*_gpu.json 2>/dev/null | head -1 || true)
if [[ -n "${OUT:-}" && -n "$latest" ]]; then
  cp "$latest" "${latest%.json}.png" "$OUT"/ 2>/dev/null || cp "$latest" "$OUT"/
  echo "copied $latest to $OUT"
fi
