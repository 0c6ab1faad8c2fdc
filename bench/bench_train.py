"""Training cost of the real-size SEVLM (random weights) vs. the plain captioner, and the data pipeline's speed.

1. Forward+backward per sequence at batch 8 (4 pairs), 30 tokens, vision frozen:
   - SEVLM with all losses (XE + VAD MSE + contrastive over pairs, `image_index`);
   - the plain captioner: GPT-2 with cross-attention, the same decoder weights, XE only.
   Measured twice: "decoder" (image features given, i.e. cached features) and "from pixels" (the frozen CLIP tower
   runs in the step, once per painting, for both). `--optimizer-step` adds an AdamW step (the GPU check does).
2. The data pipeline, single process, no image decode: tokenise + segments + labels (the processor's
   `encode_text`, padded to 30) + each token's VAD (the `[vocab, 3]` table gather), in collator-sized batches.
3. The training loader alone (`torch.utils.data.DataLoader` over the pair view and its collator, as the Trainer builds
   it), on a generated prepared corpus of painting-sized images (448-px JPEGs, quality 90, as `sevlm-prepare` and
   `prepare_artemis` store them), for 0, 1, 2 ... workers: paintings per second and per worker, before (images
   decoded by `datasets`, then `processor.preprocess_images`) and after (`sevlm.data.views.PixelValues`: one decode
   from the stored bytes, torch's antialiased uint8 resize, normalising the uint8 batch once). Each worker, like
   the single process (workers 0), runs one torch thread. Besides wall-clock rates it reports paintings per CPU-second
   of the loading processes: what one worker delivers with a core to itself, also on a shared machine.

    python3 bench/bench_train.py                   # the default run (under 5 minutes on 2 CPU cores)
    python3 bench/bench_train.py --quick           # tiny sizes: checks the script only
    python3 bench/bench_train.py --skip-model --skip-data                 # the loader alone (about a minute)
    python3 bench/bench_train.py --device cuda --amp fp16 --batch 64 --optimizer-step --skip-data   # GPU check
"""

import argparse
import io
import math
import os
import random
import resource
import tempfile
import time

import numpy as np
from _common import (  # noqa: E402
    SENTENCES,
    TINY_TEXT,
    VIT_B16,
    build_model,
    build_tokenizer,
    foreign_load_line,
    format_table,
    lexicon_source,
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
from PIL import Image  # noqa: E402

from configuration_sevlm import ARTEMIS_EMOTIONS  # noqa: E402

# The model alone on the H200 (issue 19: fp16, the v1 recipe's batch of 32 pairs): the rate the loader must feed.
GPU_STEPS_PER_SECOND = 12.6
LOADER_TARGET = 250  # paintings per second from ONE worker


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


# ------------------------------------------------------------------------------------------------- loader
ASPECTS = [(4, 3), (3, 4), (1, 1), (5, 4), (4, 5), (16, 9), (2, 3), (3, 2)]  # common painting formats


def painting_jpeg(rng, max_side, quality):
    """A painting-sized JPEG: long side `max_side`, a common format, gradients, patches of colour, brush noise."""
    across, down = ASPECTS[rng.integers(len(ASPECTS))]
    scale = max_side / max(across, down)
    width, height = round(across * scale), round(down * scale)
    y, x = np.mgrid[0:height, 0:width]
    waves = 127 + 60 * np.sin(x / rng.uniform(5, 30)) * np.cos(y / 11)
    pixels = np.stack([x * 255 / width, y * 255 / height, waves], -1)
    for _ in range(40):
        cx, cy, r = rng.integers(0, width), rng.integers(0, height), rng.integers(5, 80)
        pixels[max(0, cy - r) : cy + r, max(0, cx - r) : cx + r] = rng.integers(0, 255, 3)
    pixels = np.clip(pixels + rng.normal(0, 12, pixels.shape), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def make_loader_corpus(folder, paintings, seed=0):
    """A prepared corpus (the project's schema, saved with save_to_disk) of `paintings` painting-sized JPEGs with
    5 ArtEmis-like annotations each (ArtEmis: 5.7 per painting), loaded back memory-mapped as training loads it."""
    from datasets import Dataset, DatasetDict, load_from_disk

    from sevlm.data.schema import corpus_features
    from sevlm.data.settings import JPEG_QUALITY, MAX_IMAGE_SIDE

    rng = np.random.default_rng(seed)
    items = synthetic_pairs(paintings * 3, seed=seed)
    rows = {key: [] for key in corpus_features(ARTEMIS_EMOTIONS)}
    for index in range(paintings):
        emotions = [items[3 * index + k]["emotions"][j] for k in range(3) for j in range(2)][:5]
        explanations = [items[3 * index + k]["explanations"][j] for k in range(3) for j in range(2)][:5]
        rows["painting_id"].append(f"style/painting-{index}")
        rows["art_style"].append("style")
        rows["painting"].append(f"painting-{index}")
        image = painting_jpeg(rng, MAX_IMAGE_SIDE, JPEG_QUALITY)
        rows["image"].append({"bytes": image, "path": f"painting-{index}.jpg"})
        rows["emotions"].append(emotions)
        rows["explanations"].append(explanations)
        rows["emotion_histogram"].append([emotions.count(name) / len(emotions) for name in ARTEMIS_EMOTIONS])
        rows["source"].append(["bench"] * len(emotions))
    split = Dataset.from_dict(rows, features=corpus_features(ARTEMIS_EMOTIONS))
    DatasetDict(train=split).save_to_disk(str(folder), num_shards={"train": 1})
    return load_from_disk(str(folder))["train"]


def loader_pipelines(split, processor):
    """{name: (dataset, collate function)}: the loader before and after the fast image path."""
    from sevlm.data.views import TRAINING_COLUMNS, PairedPaintingDataset, SevlmPairCollator

    class DecodedPairs(PairedPaintingDataset):
        """The pair view as it was: `datasets` decodes every image to a full-size PIL image."""

        def __init__(self, hf_dataset, seed=0):
            super().__init__(hf_dataset, seed)
            self.dataset = hf_dataset.select_columns(TRAINING_COLUMNS)

    collator = SevlmPairCollator(processor)

    def processor_collate(features):  # the collator as it was: the processor's own image preprocessing
        batch = collator.text_features(features)
        batch["pixel_values"] = processor.preprocess_images([feature["image"] for feature in features])
        return batch

    return {
        "before: datasets decode + processor.preprocess_images": (DecodedPairs(split), processor_collate),
        "after: stored bytes + PixelValues": (PairedPaintingDataset(split), collator),
    }


CPU = torch.device("cpu")


def single_thread_worker(_):
    torch.set_num_threads(1)


def loader_cpu_seconds(loader):
    """CPU seconds used so far by the processes that load (the workers; this process when there are none)."""
    workers = getattr(getattr(loader, "_iterator", None), "_workers", None) or []
    if not workers:
        return time.process_time()
    total = 0.0
    for worker in workers:
        with open(f"/proc/{worker.pid}/stat") as stat:  # utime and stime, in clock ticks (fields 14 and 15)
            fields = stat.read().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def bench_loader(split, processor, workers, batch_pairs, epochs):
    """{(pipeline, workers): ([paintings/s per epoch], [paintings per CPU-second of loading per epoch])}: a
    DataLoader as the Trainer builds one (shuffled, persistent workers, one torch thread in each), timed over whole
    epochs after a warm-up epoch that starts the workers. The CPU-time rate is what one worker delivers with a core
    to itself, whatever else runs on the machine."""
    results = {}
    threads = torch.get_num_threads()
    for name, (dataset, collate) in loader_pipelines(split, processor).items():
        for count in workers:
            torch.set_num_threads(1)  # the single process then works as one worker does
            loader = torch.utils.data.DataLoader(
                dataset, batch_size=batch_pairs, shuffle=True, num_workers=count, collate_fn=collate,
                persistent_workers=count > 0, worker_init_fn=single_thread_worker if count else None,
                generator=torch.Generator().manual_seed(0),
            )
            for _ in loader:  # warm-up: workers start, files are cached
                pass
            rates, cpu_rates = [], []
            for epoch in range(epochs):
                dataset.set_epoch(epoch + 1)
                before = loader_cpu_seconds(loader)
                seconds, _ = timed(lambda batches=loader: sum(len(b["pixel_values"]) for b in batches), CPU)
                rates.append(len(dataset) / seconds)
                cpu_rates.append(len(dataset) / max(loader_cpu_seconds(loader) - before, 1e-9))
            results[(name, count)] = (rates, cpu_rates)
            print(f"  loader, {name}, {count} workers: {median(rates):,.0f} paintings/s, "
                  f"{median(cpu_rates):,.0f} per CPU-second", flush=True)
    torch.set_num_threads(threads)
    return results


def loader_processor(quick):
    """The processor training builds for a CLIP ViT-B/16 tower (224 px, bicubic, CLIP's mean and std) and a real-size
    tokenizer (a small one with --quick)."""
    from transformers import CLIPVisionConfig

    from processing_sevlm import SevlmProcessor
    from sevlm.vad import load_vad_lexicon

    sizes = {"vocab_size": TINY_TEXT["vocab_size"]} if quick else {}
    tokenizer = build_tokenizer(load_vad_lexicon(lexicon_source()), **sizes)
    return SevlmProcessor.from_vision_text(CLIPVisionConfig(**VIT_B16), tokenizer)


def print_loader(results, args, paintings):
    from sevlm.training import MAX_LOADER_WORKERS, default_loader_workers

    print()
    print(f"## Training loader alone: {paintings} paintings (448-px JPEGs, quality 90, 5 annotations each), "
          f"batches of {args.loader_batch} pairs, shuffled, persistent workers, 1 torch thread per worker; medians of "
          f"{args.loader_epochs} epochs (wall clock, {os.cpu_count()} cores here)")
    before = {count: median(cpu) for (name, count), (_, cpu) in results.items() if name.startswith("before")}
    rows = []
    for (name, count), (rates, cpu_rates) in results.items():
        rate, cpu_rate = median(rates), median(cpu_rates)
        ratio = f"{cpu_rate / before[count]:.2f}x" if name.startswith("after") and count in before else "-"
        rows.append([name, count, f"{rate:,.0f}", f"{2 * rate:,.0f}", f"{rate / max(count, 1):,.0f}",
                     f"{cpu_rate:,.0f}", ratio])
    header = ["pipeline", "workers", "paintings/s", "sequences/s", "paintings/s per worker (wall)",
              "paintings per worker CPU-second", "after/before (CPU)"]
    print(format_table(header, rows))
    print("(wall clock: what this machine gave, shared with other processes; CPU-second: what one worker delivers with "
          "a core to itself)")
    after = {count: median(cpu) for (name, count), (_, cpu) in results.items() if name.startswith("after")}
    count = 1 if 1 in after else min(after)
    one = after[count]
    needed = GPU_STEPS_PER_SECOND * args.loader_batch
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"- ONE worker >= {LOADER_TARGET} paintings/s ({'a worker process' if count else 'the single process'}, "
          f"per CPU-second): {one:,.0f} -> {'MET' if one >= LOADER_TARGET else 'MISSED'}")
    here, h200 = (default_loader_workers(False, cuda_available=True, cores=count) for count in (cores, 16))
    print(f"- the model alone on the H200 takes {needed:,.0f} paintings/s ({GPU_STEPS_PER_SECOND} steps/s x "
          f"{args.loader_batch} pairs): {math.ceil(needed / one)} worker(s) at this rate; the default on a GPU is "
          f"min({MAX_LOADER_WORKERS}, cores per process - 1): {here} on this machine's {cores} cores, {h200} on the "
          "H200's 16")


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
    parser.add_argument("--skip-loader", action="store_true")
    parser.add_argument("--loader-paintings", type=int, default=384, help="paintings in the generated corpus")
    parser.add_argument("--loader-workers", default="0,1,2", help="comma-separated worker counts to measure")
    parser.add_argument("--loader-batch", type=int, default=32, help="pairs (paintings) per batch (the paper: 32)")
    parser.add_argument("--loader-epochs", type=int, default=3, help="timed epochs per pipeline and worker count")
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
    if not (args.skip_model and args.skip_data):
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
    loader_rates = None
    if not args.skip_loader:
        from datasets import disable_progress_bars

        disable_progress_bars()
        paintings = min(args.loader_paintings, 64) if args.quick else args.loader_paintings
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="bench-loader-") as folder:
            split = make_loader_corpus(os.path.join(folder, "corpus"), paintings)
            image_processor = loader_processor(args.quick)
            print(f"loader corpus: {paintings} paintings generated and saved in {time.perf_counter() - started:.0f} s")
            workers = [int(count) for count in args.loader_workers.split(",")]
            loader_rates = bench_loader(split, image_processor, workers, args.loader_batch, args.loader_epochs)

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
    if loader_rates:
        print_loader(loader_rates, args, paintings)
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
