"""Training cost of the real-size SEVLM (random weights) vs. the plain captioner, and the data pipeline's speed.

1. Forward+backward per sequence at batch 8 (4 pairs), 30 tokens, vision frozen:
   - SEVLM with all losses (XE + VAD MSE + contrastive over pairs, `image_index`);
   - the plain captioner: GPT-2 with cross-attention, the same decoder weights, XE only.
   Measured twice: "decoder" (image features given, i.e. cached features) and "from pixels" (the frozen CLIP tower
   runs in the step, once per painting, for both). `--optimizer-step` adds an AdamW step (the GPU check does).
2. The data pipeline, single process, no image decode: tokenise + segments + labels (the processor's
   `encode_text`, padded to 30) + each token's VAD (the `[vocab, 3]` table gather), in collator-sized batches.

    python3 bench/bench_train.py                   # the default run (under 5 minutes on 2 CPU cores)
    python3 bench/bench_train.py --quick           # tiny sizes: checks the script only
    python3 bench/bench_train.py --device cuda --amp fp16 --batch 64 --optimizer-step --skip-data   # GPU check
"""

import argparse
import os
import random
import resource
import time

from _common import (  # noqa: E402
    SENTENCES,
    build_model,
    foreign_load_line,
    format_table,
    machine_lines,
    median,
    parameter_summary,
    plain_captioner,
    set_clock,
    synchronize,
    timed,
    torch,
    wait_for_quiet,
)

from configuration_sevlm import ARTEMIS_EMOTIONS  # noqa: E402


def synthetic_pairs(count, seed=0, words_per=(8, 30)):
    """ArtEmis-like pair items `{"emotions": [e1, e2], "explanations": [x1, x2]}` (two different emotions of one
    painting, ~8-30 words each; ArtEmis averages ~16 words), built from explanation words."""
    rng = random.Random(seed)
    vocabulary = sorted({w for s in SENTENCES for w in s.split()} | {"painting", "colour", "light", "shadow", "sea"})
    items = []
    for _ in range(count):
        emotions = rng.sample(ARTEMIS_EMOTIONS, 2)
        explanations = [" ".join(rng.choice(vocabulary) for _ in range(rng.randint(*words_per))) for _ in range(2)]
        items.append({"emotions": emotions, "explanations": explanations})
    return items


def paired_batch(processor, pairs, seq, seed=0):
    """`2 * pairs` sequences of exactly `seq` tokens: sequences 2k and 2k+1 share painting k, different emotions."""
    rng = random.Random(seed)
    emotions, explanations = [], []
    long_text = " ".join(SENTENCES)
    for _ in range(pairs):
        first, second = rng.sample(ARTEMIS_EMOTIONS, 2)
        emotions += [first, second]
        explanations += [long_text, " ".join(reversed(long_text.split()))]
    batch = processor.encode_text(emotions, explanations, max_length=seq)
    assert batch["input_ids"].shape[1] == seq, batch["input_ids"].shape
    batch["image_index"] = torch.arange(pairs).repeat_interleave(2)
    return batch


def text_collator(processor):
    """The training collator's text part (`SevlmPairCollator.text_features`: tokenise + segments + labels +
    image_index), or the processor's `encode_text` when dataset_scripts is not importable."""
    try:
        from sevlm.data.views import SevlmPairCollator

        return SevlmPairCollator(processor).text_features, "dataset_scripts.views.SevlmPairCollator.text_features"
    except ImportError:

        def collate(items):
            emotions = [e for item in items for e in item["emotions"]]
            explanations = [x for item in items for x in item["explanations"]]
            batch = dict(processor.encode_text(emotions, explanations))
            batch["image_index"] = torch.arange(len(items)).repeat_interleave(2)
            return batch

        return collate, "processor.encode_text (dataset_scripts not importable)"


def bench_data(processor, model, samples, batch_size, repeats):
    """Samples (sequences) per second of tokenise + segments + labels + VAD, single process, no image decode."""
    items = synthetic_pairs(samples // 2)
    pairs_per_batch = max(1, batch_size // 2)
    table = model.vad_table.detach().cpu()
    collate, name = text_collator(processor)

    def run():
        for start in range(0, len(items), pairs_per_batch):
            batch = collate(items[start : start + pairs_per_batch])
            batch["vad_values"] = table[batch["input_ids"]]  # what the model gathers on its device
        return batch

    run()  # warm-up
    times = [timed(run, torch.device("cpu"))[0] for _ in range(repeats)]
    return [2 * len(items) / t for t in times], name


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=8, help="sequences per step (pairs = batch / 2)")
    parser.add_argument("--seq", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=9, help="timed steps per variant (and data-pipeline passes)")
    parser.add_argument("--device", default=os.environ.get("SEVLM_BENCH_DEVICE", "cpu"))
    parser.add_argument("--amp", default="none", choices=["none", "fp16", "bf16"], help="autocast mixed precision")
    parser.add_argument("--optimizer-step", action="store_true", help="include an AdamW step (and its memory)")
    parser.add_argument("--memory-limit-gib", type=float, default=11.0, help="report peak GPU memory against this (GiB)")
    parser.add_argument("--data-samples", type=int, default=20000)
    parser.add_argument("--data-batch", type=int, default=64, help="sequences per collator call (64 = the paper's 32 pairs)")
    parser.add_argument("--skip-data", action="store_true")
    parser.add_argument("--skip-model", action="store_true")
    parser.add_argument("--quick", action="store_true", help="tiny model: check the script, not a measurement")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's default)")
    parser.add_argument("--clock", default="wall", choices=["wall", "cpu"],
                        help="wall time (default) or process CPU time (use with --threads 1 on a shared machine)")
    parser.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                        help="before timing, wait up to SECONDS for other processes to leave the CPUs idle")
    args = parser.parse_args()
    if args.batch % 2:
        parser.error("--batch must be even (pairs)")

    wall = time.perf_counter()
    set_clock(args.clock, args.threads)
    device = torch.device(args.device)
    print("# bench_train: SEVLM training cost" + (" (QUICK: tiny sizes, not a measurement)" if args.quick else ""))
    for line in machine_lines(device):
        print(line)
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    model, processor, lexicon, source, build_s = build_model(quick=args.quick)
    print(f"model built from configs in {build_s:.1f} s (random weights); VAD lexicon: {source.name}; "
          f"tokenizer {len(processor.tokenizer)} tokens")
    print("parameters: " + ", ".join(f"{k} {v / 1e6:.1f}M" for k, v in parameter_summary(model).items()))

    if args.wait_quiet:
        wait_for_quiet(args.wait_quiet)
    results = {}
    ratios = {}
    memory = {}
    if not args.skip_model:
        pairs = args.batch // 2
        batch = paired_batch(processor, pairs, args.seq)
        image_size = model.config.vision_config.image_size
        pixel_values = torch.randn(pairs, 3, image_size, image_size, generator=torch.Generator().manual_seed(0))
        amp_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(args.amp)
        inputs = {k: v.to(device) for k, v in batch.items()}
        pv = pixel_values.to(device)
        model.to(device).train()
        plain = plain_captioner(model).cpu().train()

        def make_step(kind, from_pixels):
            net = model if kind == "sevlm" else plain
            trainable = [p for p in net.parameters() if p.requires_grad]
            optimizer = torch.optim.AdamW(trainable, lr=2e-5, weight_decay=0.0) if args.optimizer_step else None
            scaler = torch.amp.GradScaler(device.type, enabled=args.amp == "fp16")
            with torch.no_grad():
                features = model.get_image_features(pv).last_hidden_state  # the cross-attention memory

            def step():
                net.zero_grad(set_to_none=True)
                with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                    if kind == "sevlm":
                        memory_in = {"pixel_values": pv} if from_pixels else {"encoder_hidden_states": features}
                        loss = net(**inputs, **memory_in).loss
                    else:
                        image = model.get_image_features(pv).last_hidden_state if from_pixels else features
                        loss = net(
                            input_ids=inputs["input_ids"],
                            attention_mask=inputs["attention_mask"],
                            token_type_ids=inputs["token_type_ids"],
                            labels=inputs["labels"],
                            encoder_hidden_states=image[inputs["image_index"]],
                        ).loss
                scaler.scale(loss).backward()
                if optimizer is not None:
                    scaler.step(optimizer)
                    scaler.update()
                return loss

            return step

        if device.type == "cuda":
            # Peak memory of each model alone on the GPU (only the CLIP tower stays for the plain captioner).
            for kind in ("sevlm", "plain"):
                if kind == "plain":
                    model.to("cpu")
                    model.vision_model.to(device)
                    plain.to(device)
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats(device)
                step = make_step(kind, True)
                for _ in range(3):
                    step()
                synchronize(device)
                memory[kind] = (torch.cuda.max_memory_allocated(device) / 2**30, torch.cuda.max_memory_reserved(device) / 2**30)
                del step
                (model if kind == "sevlm" else plain).zero_grad(set_to_none=True)
            model.to(device)
            torch.cuda.empty_cache()
        plain.to(device)

        # Timing: SEVLM and plain steps alternate, so that load from other processes hits both alike.
        for from_pixels in (False, True):
            steps = {kind: make_step(kind, from_pixels) for kind in ("sevlm", "plain")}
            for kind in ("sevlm", "plain", "sevlm", "plain"):  # warm-up (gradients, optimizer state)
                steps[kind]()
            times = {"sevlm": [], "plain": []}
            for _ in range(args.repeats):
                for kind in ("sevlm", "plain"):
                    times[kind].append(timed(steps[kind], device)[0])
            for kind in times:
                results[(kind, from_pixels)] = times[kind]
            ratios[from_pixels] = [s / p for s, p in zip(times["sevlm"], times["plain"])]
            print(f"  {'from pixels' if from_pixels else 'decoder'}: SEVLM {median(times['sevlm']):.3f} s, "
                  f"plain {median(times['plain']):.3f} s", flush=True)
            del steps
            model.zero_grad(set_to_none=True)
            plain.zero_grad(set_to_none=True)

    data_rates = None
    if not args.skip_data:
        data_rates, collator_name = bench_data(processor, model, args.data_samples, args.data_batch, args.repeats)

    print()
    if results:
        step_kind = "forward+backward" + (" + AdamW step" if args.optimizer_step else "")
        print(f"## Training step ({step_kind}), batch {args.batch} sequences = {args.batch // 2} pairs, seq {args.seq}, "
              f"vision frozen, amp {args.amp}, {device.type}; medians of {args.repeats}")
        rows = []
        for from_pixels in (False, True):
            s, p = median(results[("sevlm", from_pixels)]), median(results[("plain", from_pixels)])
            rows.append([
                "from pixels (CLIP once per painting)" if from_pixels else "decoder (image features given)",
                f"{s:.3f}", f"{1000 * s / args.batch:.1f}", f"{p:.3f}", f"{1000 * p / args.batch:.1f}", f"{s / p:.3f}",
                f"{median(ratios[from_pixels]):.3f}",
            ])
        print(format_table(
            ["step", "SEVLM s", "SEVLM ms/seq", "plain s", "plain ms/seq", "SEVLM/plain", "median of paired ratios"], rows
        ))
        if memory:
            print()
            print(f"## Peak GPU memory (GiB, torch allocator; the CUDA context, ~0.3-0.5 GiB, comes on top), "
                  f"against the paper's RTX 2080 Ti ({args.memory_limit_gib:g} GiB)")
            rows = []
            for kind, (allocated, reserved) in memory.items():
                verdict = "under" if reserved < args.memory_limit_gib else "OVER"
                rows.append([kind, f"{allocated:.2f}", f"{reserved:.2f}", f"{verdict} {args.memory_limit_gib:g} GiB"])
            print(format_table(["model (step from pixels)", "max allocated", "max reserved", "limit"], rows))
    if data_rates:
        print()
        print(f"## Data pipeline, single process (TOKENIZERS_PARALLELISM={os.environ.get('TOKENIZERS_PARALLELISM')}), "
              f"{args.data_samples} sequences in batches of {args.data_batch} ({args.data_batch // 2} pairs), no image decode")
        print(f"collator: {collator_name}; VAD: `vad_table[input_ids]` gather")
        print(format_table(
            ["pipeline", "samples/s (median)", "min", "max", "runs"],
            [["tokenise + segments + labels + VAD", f"{median(data_rates):,.0f}", f"{min(data_rates):,.0f}",
              f"{max(data_rates):,.0f}", len(data_rates)]],
        ))
    print()
    print("## Targets" + (" -- QUICK run: tiny sizes, verdicts meaningless" if args.quick else ""))
    if results:
        for from_pixels in (False, True):
            ratio = median(ratios[from_pixels])
            label = "from pixels" if from_pixels else "decoder"
            print(f"- SEVLM <= 1.25x plain ({label}, median of paired ratios): {ratio:.3f} -> {'MET' if ratio <= 1.25 else 'MISSED'}")
    if data_rates:
        rate = median(data_rates)
        print(f"- data >= 2,000 samples/s: {rate:,.0f} -> {'MET' if rate >= 2000 else 'MISSED'}")
    print(foreign_load_line())
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB; "
          f"load average at end: {os.getloadavg()[0]:.2f}; total wall time {time.perf_counter() - wall:.0f} s")


if __name__ == "__main__":
    main()
