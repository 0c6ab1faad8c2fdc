#!/usr/bin/env bash
# SEVLM GPU check: one command on a machine with a CUDA GPU (torch present, no network, the project not installed).
# Every part has its own time limit and the whole check ends within 470 s (under 8 minutes), wheel install included.
#
#   bash bench/gpu_check.sh                        # on the GPU machine, from the repository root
#   bash bench/gpu_check.sh --out DIR --wheels DIR  # tables and logs into DIR (default: $OUT when set, else a new
#                                                   # folder in /tmp), wheels from DIR (default .whl/)
#   bash bench/gpu_check.sh --smoke                 # smoke mode on a CPU: tiny sizes, a few steps (not a measurement)
#   SEVLM_GPU_CHECK_SMOKE=1 bash bench/gpu_check.sh # the same
#
# Measures, on the real-size architecture built from configs (CLIP ViT-B/16 + distilGPT-2, random weights):
#   1. the model alone: fp16 mixed-precision training steps (autocast + GradScaler + AdamW, vision frozen) at the
#      paper's batch, 32 pairs = 64 sequences of 30 tokens: step time and peak GPU memory (the paper's card had
#      11 GB), SEVLM and the plain captioner alongside (bench_train.py);
#   2. the Trainer path: `train_sevlm.py`'s training with configs/sevlm-artemis-v1.args (fp16, the default loader
#      workers for this machine, which the recipe leaves alone, then 4 as in the first H200 run) on a generated corpus of 448-px JPEG paintings, 60 steps:
#      steps/s, samples/s, the share of the model alone of part 1, the GPU's busy share (nvidia-smi sampled in the
#      background) and peak memory (bench_recipe.py);
#   3. the training loader alone: paintings/s and per worker for 0, 1 and 4 workers and the default for this
#      machine (bench_train.py --skip-model --skip-data);
#   4. the emotion index build on the GPU: images/s of `EmotionIndex.build` with a demo-size and the real-size model
#      (bench_index.py --sizes '');
#   5. generation at batch 1 and 64, fp16, greedy, 25 new tokens: (a) SEVLM generate() vs (c) plain GPT-2 with
#      cross-attention (and a few runs of the reference loop (b)), (a) with a static KV cache without and with
#      torch.compile of the decoding step (where compiled and eager tokens part, the logit gap there tells a float16
#      near-tie from a real difference), and the aten operators per new token of (a) and (c) (bench_generate.py).
# The machine has no network. The packages the check needs are checked first; when one is missing or too old, the
# wheels carried in the wheel folder (default .whl/; docs/BENCHMARKS.md, "GPU check", lists them and how to
# download them) are installed from that folder alone (pip --no-index) into /tmp/sevlm-site-packages, and the check
# stops at once, naming what is missing, if that does not satisfy every requirement.
#
# Output: every part's output on stdout and, in the output folder, gpu_check.log (all of it), tables.md (the tables,
# checks and verdicts of every part, and the summary) and one log per part. Exit status 0 when every part passed,
# 1 when one failed or reached its limit, 2 for a bad argument, 3 for missing packages, 4 without a CUDA device.
set -uo pipefail
CALLED_FROM=$PWD
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# A folder given on the command line is relative to where the script was called from.
from_caller() { case "$1" in /*) echo "$1" ;; *) echo "$CALLED_FROM/$1" ;; esac; }

SMOKE="${SEVLM_GPU_CHECK_SMOKE:-0}"
RESULTS="${SEVLM_GPU_CHECK_OUT:-${OUT:-}}"
WHEELS="${SEVLM_WHEELS:-.whl}"
while [ $# -gt 0 ]; do
    case "$1" in
        --smoke|--quick) SMOKE=1 ;;
        --out) RESULTS=$(from_caller "${2:?--out needs a folder}"); shift ;;
        --wheels) WHEELS=$(from_caller "${2:?--wheels needs a folder}"); shift ;;
        -h|--help) sed -n '2,/^set -uo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $1 (--smoke, --out DIR, --wheels DIR, --help)" >&2; exit 2 ;;
    esac
    shift
done
[ "$SMOKE" = 1 ] || SMOKE=0
# Smoke mode runs on the CPU unless told otherwise, with one torch thread (a shared machine).
if [ "$SMOKE" = 1 ]; then DEVICE="${SEVLM_BENCH_DEVICE:-cpu}"; export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
else DEVICE="${SEVLM_BENCH_DEVICE:-cuda}"; fi
PY="${PYTHON:-python3}"
# Where carried wheels are installed: a path with "site-packages" in it, which dill (datasets' fingerprints) takes
# for installed code, as it is.
SITE="${SEVLM_SITE:-/tmp/sevlm-site-packages}"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
# The project is not installed there: the checkout itself is the package (model files and `sevlm/`).
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
START=$(date +%s)
# The whole check ends within BUDGET seconds; a part that reaches its own limit is stopped and the next one runs.
if [ "$SMOKE" = 1 ]; then BUDGET="${SEVLM_CHECK_SECONDS:-900}"; else BUDGET="${SEVLM_CHECK_SECONDS:-470}"; fi

# The output folder: new files only (an earlier check's files are never replaced).
if [ -z "$RESULTS" ]; then RESULTS="${TMPDIR:-/tmp}/sevlm-gpu-check-$(date -u +%Y%m%dT%H%M%SZ)"; fi
mkdir -p "$RESULTS" || { echo "ERROR: cannot create the output folder $RESULTS" >&2; exit 2; }
PARTS=(model-step trainer loader index generation)
for name in gpu_check tables "${PARTS[@]}"; do
    for file in "$RESULTS/$name.log" "$RESULTS/$name.md"; do
        if [ -e "$file" ]; then
            echo "ERROR: $file exists (an earlier check's output?); give another folder with --out" >&2
            exit 2
        fi
    done
done
LOG="$RESULTS/gpu_check.log"
TABLES="$RESULTS/tables.md"
exec > >(tee -a "$LOG") 2>&1
TEE_PID=$!
# At the end, let tee write the last lines before the folder is read.
trap 'exec >&- 2>&-; wait "$TEE_PID" 2>/dev/null' EXIT

echo "== SEVLM gpu_check ($(date -u +%Y-%m-%dT%H:%M:%SZ)), device=$DEVICE, smoke=$SMOKE, budget ${BUDGET} s, output in $RESULTS/"
if [ "$SMOKE" = 0 ] && command -v nvidia-smi >/dev/null 2>&1; then
    echo "card: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -1)"
else
    echo "card: none asked for (smoke mode) or no nvidia-smi"
fi
echo "cores: $(nproc 2>/dev/null || echo '?'); commit: $(git rev-parse --short HEAD 2>/dev/null || echo '?')"

# Exit status 0 when every package the check needs imports at a sufficient version; prints one line per package.
requirements_ok() {
    "$PY" - <<'EOF'
import importlib
import sys

try:
    from packaging.version import Version
except ImportError as error:
    print(f"  packaging: NOT importable ({error})")
    sys.exit(1)
# (module, minimum version, what needs it)
NEEDED = [
    ("torch", "2.4", "everything"),
    ("transformers", "5.24", "everything"),
    ("huggingface_hub", "1.31", "transformers"),
    ("tokenizers", "0.23.1", "transformers"),
    ("safetensors", "0.8", "transformers"),
    ("accelerate", "1.15", "the Trainer"),
    ("datasets", "5.2", "the corpus and the loader"),
    ("pyarrow", "24", "datasets"),
    ("dill", "0.3.8", "datasets"),
    ("multiprocess", "0.70.16", "datasets"),
    ("evaluate", "0.4.6", "sevlm.training (the metrics module)"),
    ("lemminflect", "0.2.3", "the VAD look-ups and the tokenizer's word list"),
    ("faiss", "1.8", "the emotion index (part 4)"),
    ("PIL", "10", "the images"),
]
ok = True
for name, minimum, used_by in NEEDED:
    try:
        module = importlib.import_module(name)
    except Exception as error:  # missing, or broken by a dependency of the wrong version
        print(f"  {name}: NOT importable ({type(error).__name__}: {error}); needed by {used_by}")
        ok = False
        continue
    version = getattr(module, "__version__", "0").split("+")[0]
    good = Version(version) >= Version(minimum)
    ok &= good
    print(f"  {name} {version} ({module.__file__.rsplit('/', 2)[0]}): {'ok' if good else f'OLDER than {minimum}'}")

# What those packages themselves require (pip --no-deps checks nothing): datasets 5.2 wants pyarrow >= 24 and
# fsspec <= 2026.9.0, transformers 5.25 huggingface_hub >= 2.4, ...
from importlib import metadata

from packaging.requirements import Requirement

for distribution in ("transformers", "accelerate", "datasets", "evaluate", "lemminflect", "faiss-cpu"):
    try:
        requirements = metadata.requires(distribution) or []
    except metadata.PackageNotFoundError:  # reported above, or installed under another name (conda's faiss)
        continue
    for line in requirements:
        requirement = Requirement(line)
        if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
            continue
        try:
            found = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            print(f"  {distribution} requires {requirement}: NOT installed")
            ok = False
            continue
        if not requirement.specifier.contains(found, prereleases=True):
            print(f"  {distribution} requires {requirement}: found {requirement.name} {found}")
            ok = False
sys.exit(0 if ok else 1)
EOF
}

echo "packages needed:"
if ! requirements_ok; then
    shopt -s nullglob
    wheels=("$WHEELS"/*.whl)
    shopt -u nullglob
    if [ ${#wheels[@]} -eq 0 ]; then
        echo "ERROR: packages are missing or too old (above) and no wheels are in $WHEELS/: download them beforehand" \
             "on a machine with a package index (docs/BENCHMARKS.md, 'GPU check') and carry that folder" >&2
        exit 3
    fi
    # Two versions of one package would stop pip halfway: say which before installing anything.
    duplicates=$(for wheel in "${wheels[@]}"; do basename "$wheel" | cut -d- -f1 | tr 'A-Z-.' 'a-z__'; done | sort | uniq -d)
    if [ -n "$duplicates" ]; then
        echo "ERROR: $WHEELS/ holds several wheels of: $duplicates; keep one version of each" >&2
        exit 3
    fi
    echo "installing ${#wheels[@]} carried wheels from $WHEELS/ (no index) into $SITE: $(cd "$WHEELS" && ls -- *.whl | tr '\n' ' ')"
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "${wheels[@]}" || {
        echo "ERROR: installing the carried wheels failed (above); a wheel for another Python or platform?" >&2
        exit 3
    }
    export PYTHONPATH="$SITE:$PYTHONPATH"
    echo "packages needed, with the carried wheels:"
    requirements_ok || {
        echo "ERROR: packages still missing or too old after installing the wheels of $WHEELS/ (above)" >&2
        exit 3
    }
fi
"$PY" - <<'EOF'
from importlib.metadata import PackageNotFoundError, version

import torch

versions = []
for name in ("fsspec", "xxhash", "pandas", "numpy", "regex", "pillow", "peft", "triton"):
    try:
        versions.append(f"{name} {version(name)}")
    except PackageNotFoundError:
        versions.append(f"{name} MISSING")
print("other packages: " + ", ".join(versions))
print(f"cuda available: {torch.cuda.is_available()}" + (f", {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""))
EOF

if [ "$DEVICE" = cuda ] && ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "ERROR: no CUDA device visible to torch (bash bench/gpu_check.sh --smoke rehearses the check on a CPU)" >&2
    exit 4
fi

status=0
SUMMARY=()

# run_part NAME LIMIT_SECONDS COMMAND...: the command under min(LIMIT, what is left of the budget), its output shown
# and kept in $RESULTS/NAME.log; its tables go to tables.md, its time and outcome into the summary.
run_part() {
    local name=$1 limit=$2
    shift 2
    local left=$(( BUDGET - ($(date +%s) - START) ))
    (( limit > left )) && limit=$left
    if (( limit < 20 )); then
        echo "SKIPPED: only ${left} s of the budget left"
        SUMMARY+=("$name: SKIPPED (budget spent)")
        status=1
        return 1
    fi
    echo "(limit $limit s)"
    local began rc took outcome
    began=$(date +%s)
    timeout --kill-after=10 "$limit" "$@" 2>&1 | tee "$RESULTS/$name.log"
    rc=${PIPESTATUS[0]}
    took=$(( $(date +%s) - began ))
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
        outcome="STOPPED at its limit ($limit s)"
    elif [ "$rc" != 0 ]; then
        outcome="FAILED (exit status $rc) after $took s"
    else
        outcome="ok, $took s"
    fi
    echo "-> $name: $outcome"
    SUMMARY+=("$name: $outcome")
    [ "$rc" = 0 ] || status=1
    {
        echo "# $name: $outcome"
        echo
        # The tables, their headings and notes, the checks and the verdicts; not the progress lines.
        grep -E '^(#|\||- |\(|[0-9]\. |same tokens|dynamic =|foreign|total wall)' "$RESULTS/$name.log"
        echo
    } >> "$TABLES"
    return "$rc"
}

# Worker counts: the recipe file's and the default the Trainer takes on a GPU with this machine's cores.
DEFAULT_WORKERS=$("$PY" -c "from sevlm.training import default_loader_workers as d; print(d(False, cuda_available=True))" 2>/dev/null || echo 8)
if [ "$SMOKE" = 1 ]; then
    TRAIN_BATCH=8; GEN_BATCHES=(1 8)
    TRAIN_ARGS=(--quick --repeats 2)
    RECIPE_ARGS=(--quick)
    LOADER_ARGS=(--quick --loader-workers "0,1" --loader-epochs 1)
    INDEX_ARGS=(--quick)
    GEN_ARGS=(--quick --repeats 2 --ref-repeats 1 --e2e-repeats 1 --pair-seconds 0 --skip-e2e)
    LIMITS=(300 300 300 300 300)
else
    TRAIN_BATCH=64; GEN_BATCHES=(1 64)  # one image, and the paper's batch: 32 pairs = 64 sequences
    TRAIN_ARGS=(--repeats 10)
    RECIPE_ARGS=(--steps 60 --warmup-steps 10 --paintings 512)
    LOADER_ARGS=(--loader-workers "$(printf '%s\n' 0 1 4 "$DEFAULT_WORKERS" | sort -nu | paste -sd,)" --loader-epochs 2 --loader-paintings 512)
    INDEX_ARGS=(--build-images 256 --real-images 32 --batch-size 32)
    GEN_ARGS=(--repeats 10 --ref-repeats 2 --pair-seconds 4 --skip-e2e)
    # model step, Trainer, loader, index: caps; generation (torch.compile) gets what is left of the budget.
    LIMITS=(75 180 90 75 470)
fi
# fp16 autocast needs a GPU (the CPU smoke mode uses bf16 there, float32 for generation).
if [ "$DEVICE" = cuda ]; then AMP=fp16; GEN_DTYPE=float16; else AMP=bf16; GEN_DTYPE=float32; fi
echo "loader workers by default on a GPU with these cores: $DEFAULT_WORKERS"

echo
echo "== 1. the model alone: $AMP autocast + GradScaler + AdamW, vision frozen, batch $TRAIN_BATCH sequences ($((TRAIN_BATCH / 2)) pairs), seq 30"
run_part model-step "${LIMITS[0]}" "$PY" bench/bench_train.py --device "$DEVICE" --amp "$AMP" --batch "$TRAIN_BATCH" \
    --seq 30 --optimizer-step --skip-data --skip-loader "${TRAIN_ARGS[@]}"
# The SEVLM step from pixels (what a Trainer step does), for part 2's comparison.
MODEL_STEP=$(sed -n 's/^  from pixels: SEVLM \([0-9.]*\) s.*/\1/p' "$RESULTS/model-step.log" 2>/dev/null | tail -1)

echo
echo "== 2. the Trainer path: train_sevlm.py's training with configs/sevlm-artemis-v1.args ($AMP), generated 448-px paintings"
run_part trainer "${LIMITS[1]}" "$PY" bench/bench_recipe.py --device "$DEVICE" \
    "${RECIPE_ARGS[@]}" ${MODEL_STEP:+--model-step-seconds "$MODEL_STEP"}

echo
echo "== 3. the training loader alone: 448-px JPEG paintings, batches of 32 pairs, several worker counts"
run_part loader "${LIMITS[2]}" "$PY" bench/bench_train.py --device "$DEVICE" --skip-model --skip-data "${LOADER_ARGS[@]}"

echo
echo "== 4. the emotion index build on $DEVICE (EmotionIndex.build: decode, predict, thumbnails, merge, FAISS)"
run_part index "${LIMITS[3]}" "$PY" bench/bench_index.py --device "$DEVICE" --sizes '' --hostile 0 "${INDEX_ARGS[@]}"

echo
echo "== 5. generation: batch ${GEN_BATCHES[*]}, $GEN_DTYPE, greedy, 25 new tokens: (a) SEVLM vs (c) plain (and (b) reference loop); (a) with a static cache, without and with torch.compile"
run_part generation "${LIMITS[4]}" "$PY" bench/bench_generate.py --device "$DEVICE" --dtype "$GEN_DTYPE" \
    --batch-sizes "${GEN_BATCHES[@]}" --static-compile "${GEN_ARGS[@]}"

echo
echo "== gpu_check done in $(( $(date +%s) - START )) s, status $status; tables in $TABLES, logs in $RESULTS/"
{
    echo "# summary: done in $(( $(date +%s) - START )) s, status $status (device $DEVICE, smoke $SMOKE)"
    echo
    for line in "${SUMMARY[@]}"; do echo "- $line"; done
} >> "$TABLES"
for line in "${SUMMARY[@]}"; do echo "- $line"; done
exit $status
