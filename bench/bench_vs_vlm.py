"""SEVLM beside a LLaVA-1.5-7B-shaped model on this machine: parameters, memory and seconds per explanation.

Both are built from configs with random weights (nothing is downloaded): SEVLM at its real size (CLIP ViT-B/16 +
distilGPT-2 with cross-attention, `_common.build_model`), and LLaVA-1.5-7B from its published config (CLIP
ViT-L/14-336 tower, 2-layer MLP projector, Llama-2-7B-shaped decoder: 32 layers, 4096 wide, 11008 MLP, 32,064
tokens). Each explanation is one painting at batch 1, greedy, exactly 25 new tokens (`min_new_tokens`), end to end
from pixel values; LLaVA's prompt is its 576 image tokens plus a 60-token instruction.

The full 7B decoder does not fit this machine's memory and time budget, so LLaVA is measured with fewer decoder
layers (default 1, 2 and 4; everything else at full size) and its time and peak memory are extrapolated linearly to
32 layers from the 2- and 4-layer runs. The linearity is checked, not assumed: the line through 1 and 2 layers
predicts the 4-layer run, and the script prints the prediction error. Parameters are counted on the full 32-layer
model, built on the meta device (no memory).

Every model runs in its own process (clean peak memory: the resident-set high-water mark while generating, minus the
process's size before the model was built), each in the dtype it would run in here: SEVLM in float32, LLaVA in
bfloat16, since the 7B model's float32 weights alone (26.3 GiB) exceed this machine's 24 GB. By default torch uses
one thread and time is the process's CPU time, which other processes on a shared machine barely change; on a quiet
machine `--threads N --clock wall` measures elapsed time.

    python3 bench/bench_vs_vlm.py                    # the default run (about 15 minutes on this machine)
    python3 bench/bench_vs_vlm.py --llava-dtype float32 --sevlm-dtype float32   # one dtype for both
    python3 bench/bench_vs_vlm.py --quick            # tiny sizes: checks the script only
"""

import argparse
import json
import os
import subprocess
import sys
import time

from _common import (  # noqa: E402
    FOREIGN_LOAD,
    build_model,
    count_parameters,
    format_table,
    machine_lines,
    median,
    set_clock,
    timed,
    torch,
)

# llava-hf/llava-1.5-7b-hf's config.json.
LLAVA_VISION = dict(
    hidden_size=1024,
    image_size=336,
    intermediate_size=4096,
    num_attention_heads=16,
    num_hidden_layers=24,
    patch_size=14,
    projection_dim=768,
    hidden_act="quick_gelu",
    layer_norm_eps=1e-5,
    vocab_size=32000,
)
LLAVA_TEXT = dict(
    vocab_size=32064,
    hidden_size=4096,
    intermediate_size=11008,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=32,
    max_position_embeddings=4096,
    rms_norm_eps=1e-5,
    hidden_act="silu",
    tie_word_embeddings=False,
    bos_token_id=1,
    eos_token_id=2,
    pad_token_id=32001,
)
LLAVA = dict(
    image_token_index=32000,
    projector_hidden_act="gelu",
    vision_feature_select_strategy="default",
    vision_feature_layer=-2,
    image_seq_length=576,
)
TINY_LLAVA_VISION = dict(
    hidden_size=32, image_size=28, intermediate_size=64, num_attention_heads=2, num_hidden_layers=2, patch_size=14
)
TINY_LLAVA_TEXT = dict(
    vocab_size=300,
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=4,
    num_attention_heads=2,
    num_key_value_heads=2,
    max_position_embeddings=256,
    bos_token_id=1,
    eos_token_id=2,
    pad_token_id=3,
)
INSTRUCTION_TOKENS = 60
FULL_LAYERS = 32


def llava_config(layers=None, quick=False):
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig

    text = dict(TINY_LLAVA_TEXT if quick else LLAVA_TEXT)
    if layers is not None:
        text["num_hidden_layers"] = layers
    extra = dict(LLAVA, image_token_index=299, image_seq_length=4) if quick else LLAVA
    return LlavaConfig(
        vision_config=CLIPVisionConfig(**(TINY_LLAVA_VISION if quick else LLAVA_VISION)),
        text_config=LlamaConfig(**text),
        **extra,
    )


def llava_parameters(quick=False):
    """Parameters of the full model (all decoder layers), counted on the meta device."""
    from transformers import LlavaForConditionalGeneration

    with torch.device("meta"):
        model = LlavaForConditionalGeneration(llava_config(quick=quick))
    return count_parameters(model)


# ------------------------------------------------------------------------------------------- child processes
def rss_kib(field):
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def reset_peak_rss():
    """Reset the resident-set high-water mark (VmHWM), so that it measures generation alone; False if not allowed."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def measure(generate, repeats, new_tokens, start_rss):
    """{seconds: median, peak_mib: high-water mark above `start_rss`, peak_reset} of `generate()`, which returns the
    number of new tokens. Without the reset (not allowed here) the peak also covers building the model."""
    device = torch.device("cpu")
    produced = generate()  # warm-up (first-call allocations)
    assert produced == new_tokens, f"generated {produced} new tokens, not {new_tokens}"
    reset = reset_peak_rss()
    times = []
    for _ in range(repeats):
        seconds, produced = timed(generate, device)
        assert produced == new_tokens, f"generated {produced} new tokens, not {new_tokens}"
        times.append(seconds)
    return {
        "seconds": median(times),
        "peak_mib": (rss_kib("VmHWM") - start_rss) / 1024,
        "peak_reset": reset,
        "foreign_load": max(FOREIGN_LOAD) if FOREIGN_LOAD else None,
    }


def child_sevlm(args, dtype):
    from bench_generate import explanation_prompts

    start = rss_kib("VmRSS")
    model, processor, _, _, _ = build_model(quick=args.quick)
    model = model.to(dtype)
    size = model.config.vision_config.image_size
    pixel_values = torch.randn(1, 3, size, size, dtype=dtype)
    prompt = explanation_prompts(processor, 1, torch.device("cpu"))

    @torch.inference_mode()
    def generate():
        out = model.generate(
            pixel_values=pixel_values,
            input_ids=prompt["input_ids"],
            attention_mask=prompt["attention_mask"],
            max_new_tokens=args.new_tokens,
            min_new_tokens=args.new_tokens,
            do_sample=False,
        )
        return out.shape[1] - prompt["input_ids"].shape[1]

    return {"parameters": count_parameters(model), **measure(generate, args.repeats, args.new_tokens, start)}


def child_llava(args, dtype, layers):
    from transformers import LlavaForConditionalGeneration

    start = rss_kib("VmRSS")
    config = llava_config(layers, quick=args.quick)
    torch.manual_seed(0)
    model = LlavaForConditionalGeneration._from_config(config, dtype=dtype).eval()
    vision = config.vision_config
    image_tokens = (vision.image_size // vision.patch_size) ** 2  # the "default" strategy drops CLS
    instruction = INSTRUCTION_TOKENS if not args.quick else 6
    generator = torch.Generator().manual_seed(0)
    text_ids = torch.randint(3, 32000 if not args.quick else 290, (1, instruction), generator=generator)
    input_ids = torch.cat(
        [
            torch.tensor([[config.text_config.bos_token_id]]),
            torch.full((1, image_tokens), config.image_token_index),
            text_ids,
        ],
        dim=1,
    )
    pixel_values = torch.randn(1, 3, vision.image_size, vision.image_size, dtype=dtype)

    @torch.inference_mode()
    def generate():
        out = model.generate(
            input_ids=input_ids,
            attention_mask=torch.ones_like(input_ids),
            pixel_values=pixel_values,
            max_new_tokens=args.new_tokens,
            min_new_tokens=args.new_tokens,
            do_sample=False,
        )
        return out.shape[1] - input_ids.shape[1]

    return {
        "parameters": count_parameters(model),
        "prompt_tokens": input_ids.shape[1],
        **measure(generate, args.repeats, args.new_tokens, start),
    }


def run_child(args, which):
    """One measurement in a fresh process (its own peak memory)."""
    command = [
        sys.executable,
        os.path.abspath(__file__),
        "--child",
        which,
        "--sevlm-dtype",
        args.sevlm_dtype,
        "--llava-dtype",
        args.llava_dtype,
        "--repeats",
        str(args.repeats),
        "--new-tokens",
        str(args.new_tokens),
        "--threads",
        str(args.threads),
        "--clock",
        args.clock,
    ] + (["--quick"] if args.quick else [])
    started = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True)
    if completed.returncode != 0:
        raise RuntimeError(f"{which} failed:\n{completed.stderr[-3000:]}")
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    print(
        f"  {which}: {result['seconds']:.2f} s per explanation, peak {result['peak_mib']:.0f} MiB "
        f"({time.perf_counter() - started:.0f} s with the build)",
        flush=True,
    )
    return result


# ------------------------------------------------------------------------------------------------- parent
def line_through(x1, y1, x2, y2):
    slope = (y2 - y1) / (x2 - x1)
    return lambda x: y1 + slope * (x - x1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--layers",
        type=int,
        nargs=3,
        default=[1, 2, 4],
        metavar=("L1", "L2", "L3"),
        help="LLaVA decoder depths measured: the line through L1 and L2 is checked against L3, the line "
        "through L2 and L3 gives the 32-layer estimate.",
    )
    parser.add_argument("--sevlm-dtype", default="float32", choices=["bfloat16", "float32"], help="SEVLM's dtype.")
    parser.add_argument(
        "--llava-dtype",
        default="bfloat16",
        choices=["bfloat16", "float32"],
        help="LLaVA's dtype (default bfloat16: its float32 weights do not fit in 24 GB).",
    )
    parser.add_argument("--repeats", type=int, default=3, help="Timed generations per model (after one warm-up).")
    parser.add_argument("--new-tokens", type=int, default=25, help="New tokens per explanation (the paper: 25).")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: see --clock).")
    parser.add_argument(
        "--clock",
        default="cpu",
        choices=["cpu", "wall"],
        help="cpu: the process's CPU time (with 1 thread, nearly insensitive to other processes); wall: elapsed.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="Tiny sizes: checks the script only (numbers meaningless)."
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    set_clock(args.clock, args.threads)
    sevlm_dtype, llava_dtype = getattr(torch, args.sevlm_dtype), getattr(torch, args.llava_dtype)

    if args.child:
        if args.child == "sevlm":
            result = child_sevlm(args, sevlm_dtype)
        else:
            result = child_llava(args, llava_dtype, int(args.child.split(":")[1]))
        print(json.dumps(result))
        return

    print("\n".join(machine_lines(torch.device("cpu"))))
    print(
        f"SEVLM in {args.sevlm_dtype}, LLaVA in {args.llava_dtype}; batch 1, greedy, {args.new_tokens} new tokens, "
        f"median of {args.repeats} runs after a warm-up",
        flush=True,
    )
    sevlm = run_child(args, "sevlm")
    low, middle, high = sorted(args.layers)
    llava = {layers: run_child(args, f"llava:{layers}") for layers in (low, middle, high)}

    # Linearity check: the line through the two smallest depths predicts the largest.
    checks = []
    for key, label in (("seconds", "s per explanation"), ("peak_mib", "peak MiB")):
        predicted = line_through(low, llava[low][key], middle, llava[middle][key])(high)
        checks.append(
            [
                f"{label} at {high} layers",
                f"{predicted:.2f}",
                f"{llava[high][key]:.2f}",
                f"{100 * (predicted - llava[high][key]) / llava[high][key]:+.1f}%",
            ]
        )
    full = {
        key: line_through(middle, llava[middle][key], high, llava[high][key])(FULL_LAYERS)
        for key in ("seconds", "peak_mib")
    }
    parameters = llava_parameters(quick=args.quick)
    sevlm_bytes, llava_bytes = torch.finfo(sevlm_dtype).bits // 8, torch.finfo(llava_dtype).bits // 8

    print(
        f"\nLinearity of LLaVA's cost in decoder layers (line through {low} and {middle} layers vs. measured {high}):"
    )
    print(format_table(["quantity", "predicted", "measured", "error"], checks))
    rows = [
        [
            "parameters (M)",
            f"{sevlm['parameters'] / 1e6:,.1f}",
            f"{parameters / 1e6:,.1f}",
            f"{parameters / sevlm['parameters']:.1f}x",
        ],
        [
            f"weights as run: {args.sevlm_dtype} / {args.llava_dtype} (GiB)",
            f"{sevlm['parameters'] * sevlm_bytes / 2**30:.2f}",
            f"{parameters * llava_bytes / 2**30:.2f}",
            f"{parameters * llava_bytes / (sevlm['parameters'] * sevlm_bytes):.1f}x",
        ],
        [
            "weights, float32 (GiB)",
            f"{sevlm['parameters'] * 4 / 2**30:.2f}",
            f"{parameters * 4 / 2**30:.2f}",
            f"{parameters / sevlm['parameters']:.1f}x",
        ],
        [
            "weights, bfloat16 (GiB)",
            f"{sevlm['parameters'] * 2 / 2**30:.2f}",
            f"{parameters * 2 / 2**30:.2f}",
            f"{parameters / sevlm['parameters']:.1f}x",
        ],
        [
            "peak memory while generating (GiB)",
            f"{sevlm['peak_mib'] / 1024:.2f}",
            f"{full['peak_mib'] / 1024:.2f} (extrapolated)",
            f"{full['peak_mib'] / sevlm['peak_mib']:.1f}x",
        ],
        [
            "seconds per explanation",
            f"{sevlm['seconds']:.2f}",
            f"{full['seconds']:.1f} (extrapolated)",
            f"{full['seconds'] / sevlm['seconds']:.1f}x",
        ],
    ]
    print(
        f"\nSEVLM ({args.sevlm_dtype}) vs. LLaVA-1.5-7B-shaped ({args.llava_dtype}, {FULL_LAYERS} decoder layers; "
        f"measured at {low}/{middle}/{high} layers, prompt {llava[high]['prompt_tokens']} tokens), "
        f"{args.clock} clock, {args.threads} thread(s):"
    )
    print(format_table(["", "SEVLM", "LLaVA-1.5-7B", "LLaVA / SEVLM"], rows))
    measured = [
        [
            f"LLaVA, {layers} decoder layers",
            f"{result['parameters'] / 1e6:,.1f}",
            f"{result['peak_mib'] / 1024:.2f}",
            f"{result['seconds']:.2f}",
        ]
        for layers, result in llava.items()
    ]
    measured.insert(
        0, ["SEVLM", f"{sevlm['parameters'] / 1e6:,.1f}", f"{sevlm['peak_mib'] / 1024:.2f}", f"{sevlm['seconds']:.2f}"]
    )
    print("\nMeasured runs:")
    print(format_table(["model", "parameters (M)", "peak GiB", "s per explanation"], measured))
    loads = [result["foreign_load"] for result in (sevlm, *llava.values()) if result["foreign_load"] is not None]
    if loads:
        shared = max(loads) > 0.1
        if shared and args.clock == "cpu" and args.threads == 1:
            verdict = "  (shared machine; times are this process's CPU time on one thread, which that barely changes)"
        else:
            verdict = "  <-- the machine was shared: timings are inflated and noisy" if shared else ""
        print(
            f"foreign CPU load during the timed runs (share of all cores busy with other processes): max "
            f"{100 * max(loads):.0f}%{verdict}"
        )
    if not all(result["peak_reset"] for result in (sevlm, *llava.values())):
        print(
            "note: the peak-memory mark could not be reset here (/proc/self/clear_refs): peaks include building "
            "the model"
        )


if __name__ == "__main__":
    main()
