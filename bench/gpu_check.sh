#!/usr/bin/env bash
# SEVLM GPU check, for a machine with a CUDA GPU (torch + transformers present, nothing downloadable). Under 10 minutes (torch.compile included).
#
#   bash bench/gpu_check.sh                                  # on the GPU machine, from the repository root
#   SEVLM_BENCH_DEVICE=cpu bash bench/gpu_check.sh --quick   # tiny CPU rehearsal of this script (not a measurement)
#
# Measures, on the real-size model built from configs (random weights):
#   1. fp16 mixed-precision training (autocast + GradScaler + AdamW, vision frozen) at the paper's batch: 32 pairs =
#      64 sequences of 30 tokens: step time and peak GPU memory, which must stay under the 11 GB of the paper's
#      RTX 2080 Ti; the plain captioner alongside;
#   2. generation throughput at batch 1 and 64, fp16, greedy, 25 new tokens: (a) SEVLM generate() vs (c) plain GPT-2
#      with cross-attention (and a few runs of the reference loop (b)), and (a) with a static KV cache without and
#      with torch.compile of the decoding step (inductor, CUDA graphs; the first call's compilation shown apart; where
#      compiled and eager tokens part, the logit gap there tells a float16 near-tie from a real difference); and the
#      aten operators per new token of (a) and (c) at real size on the GPU (and at demo size on the CPU).
# The repo needs transformers >= 5.24. If the machine's is older, wheels carried in .whl/ (see docs/BENCHMARKS.md
# for how to download them beforehand) are installed into /tmp/site and put first on PYTHONPATH.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

QUICK=0
for arg in "$@"; do
    case "$arg" in
        --quick) QUICK=1 ;;
        *) echo "unknown argument: $arg (only --quick)" >&2; exit 2 ;;
    esac
done
DEVICE="${SEVLM_BENCH_DEVICE:-cuda}"
PY="${PYTHON:-python3}"
WHEELS="${SEVLM_WHEELS:-.whl}"
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
# The project is not installed there: the checkout itself is the package (model files and `sevlm/`).
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
START=$(date +%s)

echo "== SEVLM gpu_check ($(date -u +%Y-%m-%dT%H:%M:%SZ)), device=$DEVICE, quick=$QUICK"
if command -v nvidia-smi >/dev/null 2>&1; then
    echo "card: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -1)"
else
    echo "card: none (no nvidia-smi)"
fi

transformers_ok() {
    "$PY" - <<'EOF'
import sys
try:
    import transformers
    from packaging.version import Version
except ImportError as error:
    print(f"transformers: not importable ({error})")
    sys.exit(1)
ok = Version(transformers.__version__) >= Version("5.24")
print(f"transformers {transformers.__version__} at {transformers.__file__}: {'ok' if ok else 'older than 5.24'}")
sys.exit(0 if ok else 1)
EOF
}

if ! transformers_ok; then
    shopt -s nullglob
    wheels=("$WHEELS"/*.whl)
    shopt -u nullglob
    if [ ${#wheels[@]} -eq 0 ]; then
        echo "ERROR: transformers >= 5.24 is needed and no wheels are in $WHEELS/ (see docs/BENCHMARKS.md, 'GPU check')." >&2
        exit 3
    fi
    echo "installing ${#wheels[@]} carried wheels from $WHEELS/ into /tmp/site: $(cd "$WHEELS" && ls *.whl | tr '\n' ' ')"
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "${wheels[@]}" || {
        echo "ERROR: installing the carried wheels failed" >&2
        exit 3
    }
    export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
    transformers_ok || { echo "ERROR: transformers still older than 5.24 after installing the wheels" >&2; exit 3; }
fi
"$PY" - <<'EOF'
import importlib, torch
names = ("torch", "transformers", "tokenizers", "huggingface_hub", "safetensors", "regex", "lemminflect")
versions = []
for name in names:
    try:
        module = importlib.import_module(name)
        versions.append(f"{name} {getattr(module, '__version__', '?')}")
    except ImportError:
        versions.append(f"{name} MISSING")
print("packages: " + ", ".join(versions))
print(f"cuda available: {torch.cuda.is_available()}" + (f", {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""))
EOF

if [ "$DEVICE" = cuda ] && ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "ERROR: no CUDA device visible to torch (set SEVLM_BENCH_DEVICE=cpu for a CPU rehearsal with --quick)" >&2
    exit 4
fi

status=0
if [ "$QUICK" = 1 ]; then
    TRAIN_BATCH=8; GEN_BATCHES=(1 8)
    TRAIN_ARGS=(--quick --repeats 2)
    GEN_ARGS=(--quick --repeats 2 --ref-repeats 1 --e2e-repeats 1 --pair-seconds 0)
else
    TRAIN_BATCH=64; GEN_BATCHES=(1 64)  # one image, and the paper's batch: 32 pairs = 64 sequences
    TRAIN_ARGS=(--repeats 10)
    GEN_ARGS=(--repeats 10 --ref-repeats 3 --e2e-repeats 5)
fi
# fp16 autocast needs a GPU (the CPU rehearsal uses bf16 there, float32 for generation).
if [ "$DEVICE" = cuda ]; then AMP=fp16; GEN_DTYPE=float16; else AMP=bf16; GEN_DTYPE=float32; fi

echo
echo "== 1. training: $AMP autocast + GradScaler + AdamW, vision frozen, batch $TRAIN_BATCH sequences ($((TRAIN_BATCH / 2)) pairs), seq 30"
"$PY" bench/bench_train.py --device "$DEVICE" --amp "$AMP" --batch "$TRAIN_BATCH" --seq 30 --optimizer-step --skip-data "${TRAIN_ARGS[@]}" || status=1

echo
echo "== 2. generation: batch ${GEN_BATCHES[*]}, $GEN_DTYPE, greedy, 25 new tokens: (a) SEVLM vs (c) plain (and (b) reference loop); (a) with a static cache, without and with torch.compile"
"$PY" bench/bench_generate.py --device "$DEVICE" --dtype "$GEN_DTYPE" --batch-sizes "${GEN_BATCHES[@]}" --static-compile "${GEN_ARGS[@]}" || status=1

echo
echo "== gpu_check done in $(( $(date +%s) - START )) s, status $status"
exit $status
