#!/usr/bin/env bash
# bench-train.sh: the training throughput of the peers' 4-layer d=128 LM,
# PyTorch (torch 1.13 `tuned`: jemalloc, passive OpenMP) against one or
# more attnc binaries, alternating, ROUNDS times. It prints one line a
# round: torch's tokens/s, then each binary's (the median of steps 3-8 of
# `attnc train -steps 8`) and its ratio to torch.
#
#   bash scripts/bench-train.sh ROUNDS ATTNC_BINARY...
#
# Run it from the project root, with ../shared (bench/peers/bench.py and
# bench/attnc/models/lm4.attn) beside it, after
#   apt-get install -y python3-torch python3-numpy libopenblas0-pthread libjemalloc2
# The host is noisy: compare ratios within a round, not across rounds.
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: bash scripts/bench-train.sh ROUNDS ATTNC_BINARY..." >&2
  exit 2
fi
rounds=$1; shift
shared=${SHARED:-../shared}
py=${PYTHON:-/usr/bin/python3}
data=${DATA:-/usr/share/common-licenses/GPL-3}
model=$shared/bench/attnc/models/lm4.attn
je=$(ldconfig -p | grep -o '/.*libjemalloc.so.2' | head -1 || true)
if [ -z "$je" ]; then
  echo "libjemalloc.so.2 not found: apt-get install -y libjemalloc2" >&2
  exit 1
fi
for r in $(seq "$rounds"); do
  t=$(cd "$shared/bench/peers" && env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE LD_PRELOAD="$je" \
      MALLOC_CONF=dirty_decay_ms:-1,muzzy_decay_ms:-1 OMP_WAIT_POLICY=PASSIVE \
      "$py" bench.py train --steps 10 --warmup 2 --mode tuned |
      "$py" -c 'import json,sys; print(json.loads(sys.stdin.readlines()[-1])["tokens_per_s"])')
  line="round $r: torch $t tokens/s"
  for b in "$@"; do
    d=$(mktemp -d)
    "$b" train -steps 8 -data "$data" -out "$d/run" "$model" >/dev/null 2>&1
    a=$("$py" -c '
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
v = [r["tokens_per_sec"] for r in rows if "tokens_per_sec" in r and 3 <= r.get("step", 0) <= 8]
print(round(statistics.median(v)))' "$d/run/metrics.jsonl")
    rm -rf "$d"
    line="$line | $(basename "$b") $a ($("$py" -c "print(f'{$a/$t:.2f}')")x)"
  done
  echo "$line"
done
