#!/usr/bin/env bash
# BiSQAD on one real MVTec AD category on a GPU (paper settings: 512 px, batch 32).
# Usage: scripts/bisqad_mvtec_one_category.sh ~/data/mvtec_ad bottle [wide_resnet50_2 weights file]
set -euo pipefail
ROOT=${1:?MVTec AD root}; CAT=${2:-bottle}; WRN=${3:-}
OUT=${OUT:-runs}
maphc2f-build --source mvtec --root "$ROOT" --categories "$CAT" --count paper --size 512 --out "$OUT/maphc2f"
maphc2f splits "$OUT/maphc2f" --val-fraction 0.1 --seed 0
BACKBONE=()
if [ -n "$WRN" ]; then BACKBONE=(--backbone wide_resnet50_2 --backbone-weights "$WRN"); fi
maphc2f train bisqad --data "$OUT/maphc2f" --category "$CAT" --out "$OUT/bisqad-$CAT" \
  --size 512 --batch-size 32 --epochs 50 --device cuda --amp --seed 0 "${BACKBONE[@]}"
maphc2f eval --source mvtec --root "$ROOT" --category "$CAT" --checkpoint "$OUT/bisqad-$CAT/model.safetensors" \
  --out "$OUT/bisqad-$CAT/metrics.json" --heatmaps "$OUT/bisqad-$CAT/heatmaps.png" --device cuda
