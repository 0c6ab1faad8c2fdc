"""The Trainer path at real size: `train_sevlm.py` with a recipe file, timed, with the GPU's busy share and peak memory.

Runs `sevlm.training.train` (what `train_sevlm.py --args_file configs/sevlm-artemis-v1.args` runs) in a fresh process
per loader setting, on inputs made here, so nothing is downloaded:
  - the CLIP ViT-B/16 and distilGPT-2 architectures as config files (random weights);
  - a byte-level BPE tokenizer of GPT-2's size trained offline (as every bench script builds it, bench/_common.py);
  - a prepared corpus of painting-sized images (448-px JPEGs, quality 90, as `sevlm-prepare` stores them, with 5
    ArtEmis-like annotations each: bench_train.py's loader corpus);
  - the VAD lexicon bench/_common.py finds (NRC-VAD beside the repository, else the test fixture).
The recipe file's flags are kept (fp16, 32 pairs per step, learning rates, loader workers) except those that would
make a short run evaluate, save checkpoints or report: `--max_steps`, `--eval_strategy no`, `--save_strategy no`,
`--load_best_model_at_end false`, no validation or test split, `--report_to none`. The final model is saved as in
any run (into a temporary folder).

Measured in the training process, by a TrainerCallback: the steps per second after `--warmup-steps` (first step,
allocator, workers starting), each step's interval, the GPU's busy share over those steps (NVML's utilization.gpu,
the share of each sample period in which a kernel ran, read by `nvidia-smi` in the background every 0.2 s, or
`torch.cuda.utilization`), and the peak GPU memory of the whole training (`torch.cuda.max_memory_allocated` /
`max_memory_reserved`). With `--model-step-seconds` (the same step timed alone by `bench_train.py`, which
`bench/gpu_check.sh` passes) it says which share of the model's own rate the Trainer reaches.

    python3 bench/bench_recipe.py                          # on a CUDA machine: the recipe's workers and the default
    python3 bench/bench_recipe.py --workers 4,8,14 --steps 80
    python3 bench/bench_recipe.py --quick --device cpu     # tiny sizes on the CPU (bf16): checks the script only
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

PROCESS_START = time.perf_counter()

import _common  # noqa: E402  (offline Hub, one tokenizer thread: in the training process too)

RECIPE = "configs/sevlm-artemis-v1.args"
ARTEMIS_EPOCH_STEPS = 1900  # the v1.0 training split: 32 pairs per step (docs/REPRODUCING.md, "Time")
BUSY_INTERVAL_MS = 200
CHILD_FLAG = "--child-result"


# ------------------------------------------------------------------------------------------- GPU busy share
class BusySampler:
    """The GPU's busy share (percent) sampled in the background between `start()` and `stop()`: from `nvidia-smi`
    (a separate process, so the training loop pays nothing), else from `torch.cuda.utilization` in a thread."""

    def __init__(self, device_index, interval_ms=BUSY_INTERVAL_MS):
        self.device_index = device_index
        self.interval_ms = interval_ms
        self.samples = []
        self.source = None
        self._process = None
        self._thread = None
        self._stop = threading.Event()

    def start(self):
        command = ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
                   f"--loop-ms={self.interval_ms}", f"--id={self._smi_id()}"]
        try:
            self._process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            self.source = "nvidia-smi"
            self._thread = threading.Thread(target=self._read_smi, daemon=True)
        except OSError:
            self.source = "torch.cuda.utilization"
            self._thread = threading.Thread(target=self._poll_torch, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        if self._process is not None:
            self._process.terminate()
            self._process.wait()
        self._thread.join(timeout=5)
        return self.samples

    def _smi_id(self):
        """nvidia-smi's name for torch's device (its UUID: indexes differ under CUDA_VISIBLE_DEVICES)."""
        import torch

        uuid = getattr(torch.cuda.get_device_properties(self.device_index), "uuid", None)
        return f"GPU-{uuid}" if uuid is not None else str(self.device_index)

    def _read_smi(self):
        for line in self._process.stdout:
            if line.strip().isdigit():
                self.samples.append(int(line))
        if not self.samples and not self._stop.is_set():  # nvidia-smi refused (the device name, say): ask NVML via torch
            self.source = "torch.cuda.utilization"
            self._poll_torch()

    def _poll_torch(self):
        import torch

        while not self._stop.wait(self.interval_ms / 1000):
            try:
                self.samples.append(int(torch.cuda.utilization(self.device_index)))
            except Exception as error:  # no NVML bindings: say so in the results rather than fail the run
                self.source = f"unavailable ({error})"
                return


# ------------------------------------------------------------------------------------ the training process
def probe_class():
    from transformers import TrainerCallback

    class TrainingProbe(TrainerCallback):
        """Stamps the end of every step after `warmup`, samples the GPU's busy share over those steps, and reads the
        peak memory of the whole training (the model, its optimizer state and every step)."""

        def __init__(self, warmup):
            self.warmup = warmup
            self.stamps = []
            self.sampler = None
            self.cuda = None
            self.results = {}

        def on_train_begin(self, args, state, control, **kwargs):
            import torch

            self.cuda = not args.use_cpu and torch.cuda.is_available()
            if self.cuda:
                torch.cuda.reset_peak_memory_stats()
            self.results.update(
                setup_seconds=time.perf_counter() - PROCESS_START,
                loader_workers=args.dataloader_num_workers,
                pin_memory=args.dataloader_pin_memory,
                persistent_workers=args.dataloader_persistent_workers,
                batch_pairs=args.per_device_train_batch_size,
                precision="fp16" if args.fp16 else "bf16" if args.bf16 else "fp32",
            )

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step < self.warmup:
                return
            self._synchronize()
            self.stamps.append(time.perf_counter())
            if state.global_step == self.warmup and self.cuda:
                import torch

                self.sampler = BusySampler(torch.cuda.current_device()).start()

        def on_train_end(self, args, state, control, **kwargs):
            samples = self.sampler.stop() if self.sampler else []
            intervals = [b - a for a, b in zip(self.stamps, self.stamps[1:])]
            self.results.update(
                steps=state.global_step,
                steps_timed=len(intervals),
                timed_seconds=sum(intervals),
                step_intervals=intervals,
                busy_samples=samples,
                busy_source=self.sampler.source if self.sampler else None,
            )
            if self.cuda:
                import torch

                self.results["peak_allocated_gib"] = torch.cuda.max_memory_allocated() / 2**30
                self.results["peak_reserved_gib"] = torch.cuda.max_memory_reserved() / 2**30

        def _synchronize(self):
            if self.cuda:
                import torch

                torch.cuda.synchronize()

    return TrainingProbe


def run_child(result_file, warmup, train_argv):
    """In the training process: `train_sevlm.train(train_argv)` with the probe added to the Trainer it builds."""
    import sevlm.training as training
    import train_sevlm

    probe = probe_class()(warmup)
    build_trainer = training.build_trainer

    def build_trainer_with_probe(*args, **kwargs):
        trainer, processor = build_trainer(*args, **kwargs)
        trainer.add_callback(probe)
        return trainer, processor

    training.build_trainer = build_trainer_with_probe  # `training.train` looks it up in its module at call time
    started = time.perf_counter()
    train_sevlm.train(train_argv)
    output_dir = train_argv[train_argv.index("--output_dir") + 1]
    with open(os.path.join(output_dir, "train_results.json"), encoding="utf-8") as handle:
        trainer_metrics = json.load(handle)
    probe.results.update(
        trainer_metrics={key: trainer_metrics.get(key) for key in ("train_runtime", "train_steps_per_second")},
        run_seconds=time.perf_counter() - started,
    )
    with open(result_file, "w", encoding="utf-8") as handle:
        json.dump(probe.results, handle)


# ---------------------------------------------------------------------------------------------- the inputs
def prepare_inputs(folder, quick, paintings):
    """Architecture config files, a saved tokenizer, a prepared corpus and the lexicon path, in `folder`."""
    from bench_train import make_loader_corpus
    from datasets import disable_progress_bars
    from transformers import CLIPVisionConfig, GPT2Config

    from sevlm.vad import load_vad_lexicon

    disable_progress_bars()
    started = time.perf_counter()
    inputs = {
        "vision": os.path.join(folder, "vision.json"),
        "text": os.path.join(folder, "text.json"),
        "tokenizer": os.path.join(folder, "tokenizer"),
        "corpus": os.path.join(folder, "corpus"),
        "lexicon": str(_common.lexicon_source()),
    }
    CLIPVisionConfig(**(_common.TINY_VISION if quick else _common.VIT_B16)).to_json_file(inputs["vision"])
    text = GPT2Config(**(_common.TINY_TEXT if quick else _common.DISTILGPT2))
    text.to_json_file(inputs["text"])
    sizes = {"vocab_size": text.vocab_size} if quick else {}
    _common.build_tokenizer(load_vad_lexicon(inputs["lexicon"]), **sizes).save_pretrained(inputs["tokenizer"])
    make_loader_corpus(inputs["corpus"], paintings)
    print(f"inputs made in {time.perf_counter() - started:.0f} s: {'tiny' if quick else 'real-size'} configs, "
          f"tokenizer, {paintings} paintings (448-px JPEGs), lexicon {os.path.basename(inputs['lexicon'])}", flush=True)
    return inputs


def train_arguments(args, inputs, output_dir, workers):
    """The command line of one run: the recipe file, this run's inputs, and the flags of a short timed run."""
    argv = [
        "--args_file", args.args_file,
        "--vision_model_name_or_path", inputs["vision"],
        "--text_model_name_or_path", inputs["text"],
        "--tokenizer_name_or_path", inputs["tokenizer"],
        "--dataset_path", inputs["corpus"],
        "--vad_lexicon", inputs["lexicon"],
        "--output_dir", output_dir,
        "--max_steps", str(args.steps),
        "--eval_strategy", "no", "--save_strategy", "no", "--load_best_model_at_end", "false",
        "--eval_split", "", "--test_split", "",
        "--report_to", "none", "--disable_tqdm", "true",
    ]
    if workers is not None:
        argv += ["--dataloader_num_workers", str(workers)]
    if args.device == "cpu":  # fp16 autocast needs CUDA: the rehearsal runs bf16, one thread
        argv += ["--fp16", "false", "--bf16", "true", "--use_cpu", "true", "--torch_num_threads", "1"]
    return argv


def recipe_workers(args_file):
    """The --dataloader_num_workers the recipe file sets (None: it leaves the default)."""
    from sevlm.cli.arguments import read_args_file

    flags = read_args_file(args_file)
    return int(flags[flags.index("--dataloader_num_workers") + 1]) if "--dataloader_num_workers" in flags else None


def worker_settings(spec, args_file):
    """[(label, workers to pass or None)] from `--workers`: numbers, `recipe` (the file's setting) and `default`
    (sevlm.training's default on a GPU for this machine's cores); a count already listed is run once."""
    from sevlm.training import default_loader_workers

    default = default_loader_workers(False, cuda_available=True)
    settings, seen = [], set()
    for item in (part.strip() for part in spec.split(",") if part.strip()):
        if item == "recipe":
            count = recipe_workers(args_file)
            setting = (f"{count} (the recipe file)", None) if count is not None else (f"{default} (default, as the recipe file leaves it)", None)
            count = default if count is None else count
        elif item == "default":
            count = default
            setting = (f"{count} (default on a GPU here)", count)
        else:
            count = int(item)
            setting = (item, count)
        if count not in seen:
            seen.add(count)
            settings.append(setting)
    return settings


def run_one(args, inputs, folder, label, workers):
    """One training process; its probe's results, or None when it failed (its output then shows why)."""
    result_file = os.path.join(folder, f"result-{len(os.listdir(folder))}.json")
    output_dir = os.path.join(folder, f"run-{len(os.listdir(folder))}")
    command = [sys.executable, os.path.abspath(__file__), CHILD_FLAG, result_file, "--warmup-steps",
               str(args.warmup_steps), "--", *train_arguments(args, inputs, output_dir, workers)]
    print(f"\n== Trainer run, loader workers {label}: {args.steps} steps, timed after step {args.warmup_steps}",
          flush=True)
    # The training process imports this checkout's modules, as this process does (bench_index.py's children too).
    path = os.pathsep.join(filter(None, [str(_common.REPO_ROOT), os.environ.get("PYTHONPATH")]))
    started = time.perf_counter()
    completed = subprocess.run(command, env={**os.environ, "PYTHONPATH": path})
    if completed.returncode != 0:
        print(f"ERROR: the training process exited with status {completed.returncode}", flush=True)
        return None
    with open(result_file, encoding="utf-8") as handle:
        results = json.load(handle)
    results["process_seconds"] = time.perf_counter() - started
    print(f"-> {steps_per_second(results):.2f} steps/s after step {args.warmup_steps}, GPU busy {busy_text(results)}, "
          f"peak {memory_text(results)} GiB allocated / reserved, process {results['process_seconds']:.0f} s", flush=True)
    return results


# ------------------------------------------------------------------------------------------------ reporting
def percentile(values, share):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def steps_per_second(results):
    return results["steps_timed"] / results["timed_seconds"] if results["timed_seconds"] else float("nan")


def memory_text(results):
    if "peak_allocated_gib" not in results:
        return "n/a (CPU)"
    return f"{results['peak_allocated_gib']:.2f} / {results['peak_reserved_gib']:.2f}"


def busy_text(results):
    samples = results.get("busy_samples") or []
    if not samples:
        return "n/a" if results.get("busy_source") is None else f"none ({results['busy_source']})"
    mean = sum(samples) / len(samples)
    return f"{mean:.0f}% (median {percentile(samples, 0.5)}%, {min(samples)}-{max(samples)}%, n={len(samples)})"


def report(runs, args):
    print()
    print(f"## Trainer path ({args.args_file}, {'tiny (--quick)' if args.quick else 'real-size'} architecture from "
          f"configs, random weights, {args.device}): steps/s over steps {args.warmup_steps + 1}-{args.steps}")
    rows = []
    for label, results in runs:
        if results is None:
            rows.append([label, "FAILED", "-", "-", "-", "-", "-", "-", "-", "-"])
            continue
        rate = steps_per_second(results)
        intervals = results["step_intervals"]
        memory = memory_text(results)
        own = results["trainer_metrics"].get("train_steps_per_second")
        rows.append([
            label, results["precision"], f"{rate:.2f}", f"{rate * results['batch_pairs']:,.0f}",
            f"{percentile(intervals, 0.5):.3f}",
            f"{percentile(intervals, 0.9):.3f}", busy_text(results), memory,
            f"{own:.2f}" if own is not None else "-", f"{results['setup_seconds']:.0f} / {results['process_seconds']:.0f}",
        ])
    print(_common.format_table(
        ["loader workers", "precision", "steps/s", "samples/s (pairs)", "median step s", "p90 step s",
         "GPU busy (mean, median, range)",
         "peak GiB allocated / reserved", "Trainer's steps/s (all steps)", "set-up s / process s"], rows))
    print("(steps/s and step intervals: after the warm-up steps, a GPU synchronisation at each step end; GPU busy: "
          "NVML's utilization.gpu, the share of each sample period in which a kernel ran; the Trainer's own rate "
          "counts every step from the first, workers starting included)")
    verdicts(runs, args)


def verdicts(runs, args):
    print()
    print("## Targets" + (" -- QUICK run: tiny sizes, verdicts meaningless" if args.quick else ""))
    done = [(label, results) for label, results in runs if results is not None]
    for label, results in done:
        rate = steps_per_second(results)
        epoch_minutes = ARTEMIS_EPOCH_STEPS / rate / 60
        line = (f"- workers {label}: {rate:.2f} steps/s; an ArtEmis v1.0 epoch ({ARTEMIS_EPOCH_STEPS:,} steps) would "
                f"take {epoch_minutes:.0f} min of training steps at this rate")
        if args.model_step_seconds:
            share = rate * args.model_step_seconds
            verdict = "MET" if share >= 0.8 else "MISSED"
            line += (f"; {100 * share:.0f}% of the model alone ({1 / args.model_step_seconds:.1f} steps/s, "
                     f"bench_train.py) -> at least 80%: {verdict}")
        print(line)
        if "peak_allocated_gib" in results:
            peak = results["peak_reserved_gib"]
            print(f"  peak reserved {peak:.2f} GiB -> under the paper's 11 GiB card: {'MET' if peak < 11 else 'MISSED'}")
        samples = results.get("busy_samples") or []
        if samples:
            busy = sum(samples) / len(samples)
            print(f"  GPU busy {busy:.0f}% of the time -> most of the time (over 50%): {'MET' if busy > 50 else 'MISSED'}")


# ----------------------------------------------------------------------------------------------------- main
def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default=os.environ.get("SEVLM_BENCH_DEVICE"),
                        help="cuda or cpu (default: cuda when available); on the CPU the runs use bf16 and one thread")
    parser.add_argument("--args-file", default=RECIPE, help=f"the recipe file (default {RECIPE})")
    parser.add_argument("--workers", default="recipe,default,4",
                        help="comma-separated loader settings, one training process each: numbers, 'recipe' (the "
                        "recipe file's --dataloader_num_workers) and 'default' (sevlm.training's default on a GPU for "
                        "this machine's cores); default: recipe,default,4 (a count already listed runs once; 4 workers is the "
                        "setting of the first H200 measurement)")
    parser.add_argument("--steps", type=int, default=60, help="training steps per run (default 60)")
    parser.add_argument("--warmup-steps", type=int, default=10, help="steps before the timing starts (default 10)")
    parser.add_argument("--paintings", type=int, default=640,
                        help="paintings in the generated corpus (default 640: 20 steps of 32 pairs per epoch)")
    parser.add_argument("--model-step-seconds", type=float, default=None,
                        help="the model's own training step at this batch (bench_train.py, from pixels), to compare with")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes, 6 steps, 48 paintings: checks the script, not a measurement")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.warmup_steps, args.paintings = 6, 2, 48
    if args.warmup_steps >= args.steps - 1:
        parser.error(f"--warmup-steps {args.warmup_steps} leaves fewer than two timed steps of --steps {args.steps}")
    return args


def main():
    if CHILD_FLAG in sys.argv:
        split = sys.argv.index("--")
        result_file = sys.argv[sys.argv.index(CHILD_FLAG) + 1]
        warmup = int(sys.argv[sys.argv.index("--warmup-steps") + 1])
        return run_child(result_file, warmup, sys.argv[split + 1 :])
    args = parse_args()
    import torch

    args.device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: no CUDA device is visible to torch; use --device cpu (with --quick) to rehearse")
    print("# bench_recipe: the Trainer path" + (" (QUICK: tiny sizes, not a measurement)" if args.quick else ""))
    print(f"python {sys.version.split()[0]}, torch {torch.__version__}, {os.cpu_count()} logical cores"
          + (f", GPU {torch.cuda.get_device_name(0)}" if args.device == "cuda" else ""))
    with tempfile.TemporaryDirectory(prefix="sevlm-bench-recipe-") as folder:
        inputs = prepare_inputs(folder, args.quick, args.paintings)
        runs_folder = os.path.join(folder, "runs")
        os.mkdir(runs_folder)
        runs, seen = [], set()
        for label, workers in worker_settings(args.workers, args.args_file):
            effective = recipe_workers(args.args_file) if workers is None else workers
            if effective in seen:  # 'default' may equal the recipe's setting
                continue
            seen.add(effective)
            runs.append((label, run_one(args, inputs, runs_folder, label, workers)))
    report(runs, args)
    print(f"\ntotal wall time {time.perf_counter() - PROCESS_START:.0f} s")
    return 0 if all(results is not None for _, results in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
