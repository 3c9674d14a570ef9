#!/usr/bin/env bash
# Every check that needs a CUDA GPU, in one run: the GPU-marked tests, refinement
# throughput (bench_refine), SAM + Ray builds (bench_build), and the user's chain
# on CUDA: raw build -> train npcF / npcF++ (bf16) -> refined build through the
# Ray GPU refinement actors -> validate -> BiSQAD train + eval (bf16).
#
# Usage: scripts/gpu_checks.sh [WORK_DIR]
#   with the package installed (pip install -e '.[test]'); env overrides for a
#   quick CPU rehearsal: DEVICE=cpu SIZE=64 TRAIN_SIZE=64 IMAGES=4 BATCH=2 SKIP_SAM=1 REFINED_COUNT=1
# Prints one block per step (exit code, seconds, the log's tail); full logs in WORK_DIR/logs
# (bench_refine's log holds torch.profiler's costliest operators of one npcF++ batch).
set -u
WORK=${1:-$(mktemp -d)}
mkdir -p "$WORK/logs"
PY=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
SIZE=${SIZE:-512}            # inference / build side (the paper's)
TRAIN_SIZE=${TRAIN_SIZE:-256}
IMAGES=${IMAGES:-256}
BATCH=${BATCH:-32}
WORKERS=${WORKERS:-8,15}
AMP=(); [ "$DEVICE" = cuda ] && AMP=(--amp)
export TQDM_DISABLE=1 RAY_USAGE_STATS_ENABLED=0 PYTHONUNBUFFERED=1

step() {  # step NAME SECONDS_LIMIT TAIL_LINES COMMAND...
  local name=$1 limit=$2 lines=$3; shift 3
  local start=$SECONDS
  timeout "$limit" "$@" >"$WORK/logs/$name.log" 2>&1
  local rc=$?
  echo "=== $name: rc=$rc in $((SECONDS - start)) s"
  tail -n "$lines" "$WORK/logs/$name.log"
}

step env 30 20 bash -c "nvidia-smi -L; $PY -c 'import sys, torch, ray, numpy; print(sys.version.split()[0], \"torch\", torch.__version__, \"cuda\", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else \"-\", \"ray\", ray.__version__, \"numpy\", numpy.__version__)'"

step bench_refine 200 8 $PY scripts/bench_refine.py --device "$DEVICE" --size "$SIZE" --images "$IMAGES" \
  --batch "$BATCH" --train-steps 5 --skip build --profile
step bench_refine_compiled 300 5 $PY scripts/bench_refine.py --device "$DEVICE" --size "$SIZE" --images "$IMAGES" \
  --batch "$BATCH" --skip training,build --compile

step gpu_tests 200 15 $PY -m pytest -q -p no:cacheprovider -m gpu tests/foreground/test_sam.py tests/builder/test_ray_runner.py

if [ -z "${SKIP_SAM:-}" ]; then
  # Randomly initialised vit_h through segment-anything's own builder: speed does not depend on the weights.
  step sam_checkpoint 120 3 $PY -c "
import torch; from segment_anything import sam_model_registry
torch.save(sam_model_registry['vit_h']().state_dict(), '$WORK/sam_vit_h.pth'); print('saved')"
  step bench_build_sam 300 12 $PY scripts/bench_build.py --size "$SIZE" --count 4 --rows-per-shard 48 --no-serial \
    --workers "$WORKERS" --device "$DEVICE" --sam-checkpoint "$WORK/sam_vit_h.pth" --sam-model vit_h --scratch "$WORK/bench_build"
fi

step raw_build 200 6 maphc2f-build --source demo --size "$TRAIN_SIZE" --count 2 --out "$WORK/raw" --no-progress
step train_npcf 200 6 maphc2f train npcf --data "$WORK/raw" --out "$WORK/npcf.safetensors" --epochs 2 --batch-size 16 \
  --size "$TRAIN_SIZE" --device "$DEVICE" "${AMP[@]}" --num-workers 4 --no-progress
step train_npcfpp 200 6 maphc2f train npcfpp --data "$WORK/raw" --npcf "$WORK/npcf.safetensors" \
  --out "$WORK/npcfpp.safetensors" --epochs 2 --batch-size 16 --size "$TRAIN_SIZE" --device "$DEVICE" "${AMP[@]}" \
  --num-workers 4 --no-progress
step refined_build 300 12 maphc2f-build --source demo --size "$SIZE" --count "${REFINED_COUNT:-6}" --npcf "$WORK/npcf.safetensors" \
  --npcfpp "$WORK/npcfpp.safetensors" --out "$WORK/refined" --no-progress
step validate_refined 120 4 maphc2f validate "$WORK/refined"
step splits 60 3 maphc2f splits "$WORK/raw" --val-fraction 0.1 --seed 0
step train_bisqad 300 12 maphc2f train bisqad --data "$WORK/raw" --category nut --out "$WORK/bisqad" \
  --size "$TRAIN_SIZE" --batch-size 16 --epochs 2 --device "$DEVICE" "${AMP[@]}" --seed 0 --no-progress
echo "=== done; logs in $WORK/logs"
