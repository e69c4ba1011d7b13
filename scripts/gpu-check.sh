#!/usr/bin/env bash
# gpu-check.sh: the GPU checks of the Triton and CUDA targets, in two steps.
#
#   bash scripts/gpu-check.sh prepare DIR [ATTNC]   # here, with Go: build what the GPU machine reads
#   bash scripts/gpu-check.sh run DIR [ARGS...]     # there, with no Go: run the checks, print one table
#
# prepare builds every stdlib model for -target triton (DIR/<model>) and
# -target cuda (DIR/<model>_cuda, with PTX when clang-14/clang-16 and
# llc-14/llc-16 are installed), the attention cases of the timings
# (DIR/attn_bench), and copies gpu_check.py; ATTNC is an attnc binary (by
# default `go run ./cmd/attnc`). run needs python3 with torch (CUDA) and
# triton; ARGS go to gpu_check.py (--n 8192, --device cpu). Without a GPU
# the checks that need one are skipped with the reason. It exits 1 when a
# check fails.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 2 ]; then
  echo "usage: bash scripts/gpu-check.sh prepare DIR [ATTNC] | run DIR [ARGS...]" >&2
  exit 2
fi
step=$1 dir=$2
shift 2
case $step in
prepare)
  if [ $# -ge 1 ]; then attnc=("$1"); else attnc=(go run ./cmd/attnc); fi
  mkdir -p "$dir"
  for f in stdlib/*.attn; do
    m=$(basename "$f" .attn)
    [ "$m" = layers ] && continue
    "${attnc[@]}" build -force -target triton -o "$dir/$m" "$f" >/dev/null
    "${attnc[@]}" build -force -target cuda -o "$dir/${m}_cuda" "$f" >/dev/null || echo "no CUDA package for $m" >&2
  done
  "${attnc[@]}" build -force -target triton -o "$dir/attn_bench" scripts/gpu/attn_bench.attn >/dev/null
  cp scripts/gpu/gpu_check.py "$dir/"
  echo "prepared $dir: carry it to the GPU machine and run: bash scripts/gpu-check.sh run $dir"
  ;;
run)
  py=${PYTHON:-python3}
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
  else
    echo "nvidia-smi not found: the GPU checks will be skipped" >&2
  fi
  exec "$py" "$dir/gpu_check.py" "$dir" "$@"
  ;;
*)
  echo "gpu-check.sh: unknown step $step (prepare or run)" >&2
  exit 2
  ;;
esac
