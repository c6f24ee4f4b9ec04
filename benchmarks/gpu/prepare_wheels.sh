#!/usr/bin/env bash
# Run where pip can reach PyPI (NOT on the GPU machine): fills .whl/ with the wheels the GPU
# image lacks, for benchmarks/gpu/run_gpu.sh (the project runs from the checkout). Python 3.12, x86-64.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
mkdir -p .whl
PLAT=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
      --platform manylinux2014_x86_64 --platform manylinux1_x86_64)
# Missing from the GPU image: arviz and its h5netcdf / xarray-einstats / platformdirs needs (infer/), and
# libroadrunner + python-libsbml (the SBML peer). jax, diffrax, equinox, numpyro, optax,
# scipy, xarray, pandas and matplotlib are already there.
"$PY" -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  "${PLAT[@]}" -d .whl \
  arviz==0.23.4 xarray-einstats h5netcdf platformdirs libroadrunner==2.10.0 python-libsbml
ls -la .whl
du -sh .whl   # must stay well under the 64 MiB a device call may carry
