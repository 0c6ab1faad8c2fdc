"""Emotion index at scale: build throughput, and query latency over generated collections (exact vs approximate).

    python3 bench/bench_index.py                 # the documented run (about 10 minutes on 2 cores, ~8 GB peak memory)
    python3 bench/bench_index.py --quick         # tiny sizes: checks the script, the numbers mean nothing
    python3 bench/bench_index.py --sizes 100000 --skip-real --skip-e2e
    python3 bench/bench_index.py --skip-build --sizes '' --hostile 6   # only 4. (about 3 minutes, ~2 GB peak)
    python3 bench/bench_index.py --sizes '' --real-images 256            # the build on a CUDA GPU (the default there)

1. Build: `EmotionIndex.build` over generated 512x384 JPEG paintings (decode, predict through
   `pipeline_sevlm.predict_batch`, thumbnails, the batch files, the merge and the FAISS indexes), in images/s, with the
   demo model (outputs/sevlm-demo, else a demo-size model with random weights from configs/demo_*.json) and with the
   real-size architecture (CLIP ViT-B/16 + distilGPT-2, random weights: generation always runs all 25 tokens).
   On `--device cuda` (the default where torch sees a GPU) the models predict on the GPU in float32, as
   `sevlm-index` does there, with torch's default threads for the CPU work; on the CPU each build runs with 1 and
   with all torch threads.
2. FAISS: one query (k=10, one thread) over N generated vectors of each similarity part (emotion: sqrt of 9-class
   Dirichlet scores; VAD: 3-d; visual: unit vectors of `--dim` drawn around 1,024 cluster centres, as image
   embeddings cluster), for the exact `Flat` index and the approximate `IVF` one the index switches to
   (`APPROXIMATE_FROM`, `APPROXIMATE_FROM_LOW_DIM`): build seconds, median query milliseconds, recall@10 against the
   exact answer.
3. End to end: `EmotionIndex.search` (FAISS candidates, exact re-scoring, filters, the hit records) on index folders
   of N generated rows written through the build's own merge (`_commit`): merge seconds, load seconds, median query
   milliseconds for an emotion mix, an indexed item with visual_weight 0.3, words, and an emotion mix with a filter.
4. Hostile images (`--hostile N`): peak memory (the process's maximum resident set) of `EmotionIndex.build` over N
   PNG files of 13000 x 13000 16-bit pixels (328 KB each) beside N ordinary 512x384 JPEG paintings, and of one web
   app request for such a file read the way Gradio hands it over: as a decoded picture (`gr.Image(type="pil")`, the
   app before) or as a file the app reads at a bounded size (`type="filepath"`, the app now). Each in a fresh process.
"""

import argparse
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

import _common  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from _common import format_table, machine_lines, median  # noqa: E402

from configuration_sevlm import ARTEMIS_EMOTIONS  # noqa: E402
from sevlm.index import build as B  # noqa: E402
from sevlm.index import faiss_indexes as F  # noqa: E402
from sevlm.index import similarity as S  # noqa: E402
from sevlm.index import store as E  # noqa: E402

DEMO_MODEL = _common.REPO_ROOT / "outputs" / "sevlm-demo"
CLUSTERS = 1024


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="Tiny sizes: checks the script (numbers meaningless).")
    parser.add_argument("--model", help="The SEVLM folder of the build measurement (default: outputs/sevlm-demo, else a demo-size random model).")
    parser.add_argument("--sizes", default="100000,1000000", help="Collection sizes for the FAISS and end-to-end tables ('' skips both).")
    parser.add_argument("--dim", type=int, default=768, help="Image-embedding width (768: the real-size model; the demo model's is 64).")
    parser.add_argument("--queries", type=int, default=200, help="Queries per FAISS measurement (default 200).")
    parser.add_argument("--e2e-queries", type=int, default=30, help="Queries per end-to-end measurement (default 30).")
    parser.add_argument("--build-images", type=int, default=192, help="Generated paintings indexed with the demo model (default 192).")
    parser.add_argument("--real-images", type=int, default=32, help="Generated paintings indexed with the real-size model (default 32).")
    parser.add_argument("--batch-size", type=int, default=16, help="Build batch size (default 16; the real-size model takes 8 on the CPU, this on a GPU).")
    parser.add_argument(
        "--device",
        default="cuda" if torch.cuda.is_available() else "cpu",
        help="Where the build's models predict: cuda (the default when torch sees a GPU) or cpu. The FAISS, end-to-end "
        "and hostile-image measurements run on the CPU either way.",
    )
    parser.add_argument("--skip-build", action="store_true", help="Skip the build measurements (1.).")
    parser.add_argument("--skip-real", action="store_true", help="Skip the real-size build (its model takes about a minute to build).")
    parser.add_argument("--skip-e2e", action="store_true", help="Skip the end-to-end search table.")
    parser.add_argument("--hostile", type=int, default=0, help="Measure 4. with this many 13000x13000 16-bit PNG files (0: skip).")
    parser.add_argument("--wait-quiet", type=float, default=0, help="Wait up to this many seconds for other processes to leave the CPUs idle.")
    return parser.parse_args()


# ---------------------------------------------------------------------------------------------------- data
def paintings(folder, count, seed=0, size=(512, 384)):
    """Generated paintings saved as JPEG files (bands, discs and noise: real decode and resize work)."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for number in range(count):
        image = Image.fromarray(rng.integers(0, 60, (size[1], size[0], 3), dtype=np.uint8) + rng.integers(0, 190, 3, dtype=np.uint8))
        draw = ImageDraw.Draw(image)
        for _ in range(6):
            x, y = rng.integers(0, size[0]), rng.integers(0, size[1])
            radius = int(rng.integers(10, 120))
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
        paths.append(folder / f"painting-{number:05d}.jpg")
        image.save(paths[-1], quality=90)
    return paths


def emotion_vectors(count, rng):
    return rng.dirichlet(np.full(len(ARTEMIS_EMOTIONS), 0.6), count).astype(np.float32)


def visual_vectors(count, dim, rng, chunk=100_000):
    """Unit vectors around `CLUSTERS` centres (generated in chunks: a million 768-wide rows are 3 GB)."""
    centres = rng.standard_normal((CLUSTERS, dim), dtype=np.float32)
    out = np.empty((count, dim), dtype=np.float32)
    for start in range(0, count, chunk):
        stop = min(count, start + chunk)
        block = centres[rng.integers(0, CLUSTERS, stop - start)] + 0.6 * rng.standard_normal((stop - start, dim), dtype=np.float32)
        out[start:stop] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def vad_vectors(count, rng):
    return np.clip(rng.normal(0.0, 0.35, (count, 3)), -1, 1).astype(np.float32)


# --------------------------------------------------------------------------------------------------- build
def demo_model(workdir, given=None):
    """(folder, description): `given`, else the trained demo model, else a demo-size model with random weights saved
    in workdir."""
    if given:
        return pathlib.Path(given), given
    if (DEMO_MODEL / "config.json").is_file():
        return DEMO_MODEL, "outputs/sevlm-demo (trained)"
    from transformers import CLIPVisionConfig, GPT2Config

    from modeling_sevlm import SevlmForConditionalGeneration
    from processing_sevlm import SevlmProcessor
    from sevlm.hub import add_pipeline_to_folder
    from sevlm.tokenizer import train_tokenizer
    from sevlm.vad import build_vad_table

    vision = CLIPVisionConfig.from_json_file(str(_common.REPO_ROOT / "configs" / "demo_vision.json"))
    text = GPT2Config.from_json_file(str(_common.REPO_ROOT / "configs" / "demo_text.json"))
    texts = [f" the emotion is {e} because {s}" for e in ARTEMIS_EMOTIONS for s in _common.SENTENCES] * 20
    processor = SevlmProcessor.from_vision_text(vision, train_tokenizer(texts, vocab_size=text.vocab_size))
    vad_table = build_vad_table(processor.tokenizer, _common.lexicon_source())
    model = SevlmForConditionalGeneration.from_vision_text(vision, text, processor, vad_table=vad_table)
    folder = workdir / "demo-size-model"
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    add_pipeline_to_folder(folder)
    return folder, "demo size, random weights (no outputs/sevlm-demo)"


def measure_build(name, files, workdir, batch_size, threads, device, **model):
    """A table row: one build of `files` into a fresh folder with `threads` torch threads, predicting on `device`."""
    torch.set_num_threads(threads)
    predicting = []
    real = B.predict_rows

    def timed_predict(*args, **kwargs):
        start = time.perf_counter()
        result = real(*args, **kwargs)
        predicting.append(time.perf_counter() - start)
        return result

    B.predict_rows = timed_predict
    target = workdir / f"index-{len(predicting)}-{time.time_ns()}"
    try:
        start = time.perf_counter()
        index = E.EmotionIndex.build(files, target, batch_size=batch_size, device=device, progress=False, **model)
        seconds = time.perf_counter() - start
    finally:
        B.predict_rows = real
        shutil.rmtree(target, ignore_errors=True)
    assert len(index) == len(files)
    predict = sum(predicting)
    return [name, device, threads, len(files), batch_size, f"{seconds:.1f}", f"{len(files) / seconds:.1f}", f"{100 * predict / seconds:.0f}%"]


# --------------------------------------------------------------------------------------------------- FAISS
def faiss_rows(count, dim, queries, rng):
    import faiss

    rows = []
    generators = {
        "emotion": lambda: S.component_vectors("emotion", emotion_vectors(count, rng)),
        "vad": lambda: S.component_vectors("vad", vad_vectors(count, rng)),
        "visual": lambda: visual_vectors(count, dim, rng),
    }
    for part, generate in generators.items():  # one part's vectors in memory at a time (the visual ones are 3 GB)
        vectors = generate()
        picks = rng.choice(count, queries, replace=False)
        noise = 0.02 * rng.standard_normal((queries, vectors.shape[1]), dtype=np.float32)
        asked = S.component_vectors(part, vectors[picks] + noise) if part != "vad" else vectors[picks] + noise
        truth = None
        for kind in ("Flat", f"IVF{F.ivf_lists(count)},Flat"):
            faiss.omp_set_num_threads(torch.get_num_threads())
            start = time.perf_counter()
            index = F.empty_faiss_index(vectors.shape[1], kind, lambda size: vectors[rng.choice(count, min(size, count), replace=False)])  # noqa: B023 (called at once)
            for first in range(0, count, 65536):
                index.add(vectors[first : first + 65536])
            F.tune_faiss_index(index)
            built = time.perf_counter() - start
            faiss.omp_set_num_threads(1)
            found, times = [], []
            for query in asked:
                start = time.perf_counter()
                found.append(index.search(query[None], 10)[1][0])
                times.append(time.perf_counter() - start)
            if truth is None:
                truth = found
            recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth)])
            rows.append([f"{count:,}", f"{part} ({vectors.shape[1]}-d)", kind, f"{built:.1f}", f"{1000 * median(times):.2f}", f"{recall:.3f}"])
            print("  " + " | ".join(rows[-1]), flush=True)
            index = None  # freed before the next index is built
    return rows


# ------------------------------------------------------------------------------------------------ end to end
def synthetic_index(folder, count, dim, rng, processor, model):
    """An index folder of `count` generated rows, written as batch files and merged by the build's `_commit`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    emotions = list(model.config.emotions)
    schema = E.index_features(emotions, dim).arrow_schema
    plan = {"model": "generated", "model_fingerprint": "generated", "emotions": emotions, "generate_kwargs": {}, "thumbnail_size": 0, "replace": True}
    folder.mkdir(parents=True)
    pending, _ = B.open_pending(folder, plan)
    texts = [f"the {w} colors make me feel {f}" for w in ("dark", "bright", "calm", "red") for f in ("sad", "happy", "calm", "afraid")]
    vad_lookup = [S.vad_profile(text, processor.tokenizer, model.vad_table.numpy()) for text in texts]
    chunk = 100_000
    for start in range(0, count, chunk):
        stop = min(count, start + chunk)
        size = stop - start
        scores = emotion_vectors(size, rng)
        which = rng.integers(0, len(texts), size)
        vad = np.stack([vad_lookup[i] if vad_lookup[i] is not None else np.full(3, np.nan, np.float32) for i in which]).astype(np.float32)
        table = pa.Table.from_arrays(
            [
                pa.array([f"item-{n:07d}" for n in range(start, stop)]),
                pa.array([None] * size, type=pa.string()),
                pa.array([None] * size, type=pa.int64()),
                pa.array([None] * size, type=pa.int64()),
                pa.array([emotions[i] for i in scores.argmax(1)]),
                pa.array(scores.max(1)),
                pa.FixedSizeListArray.from_arrays(pa.array(scores.ravel()), len(emotions)),
                pa.array([texts[i] for i in which]),
                pa.FixedSizeListArray.from_arrays(pa.array(vad.ravel()), 3),
                pa.FixedSizeListArray.from_arrays(pa.array(visual_vectors(size, dim, rng).ravel()), dim),
                pa.array([None] * size, type=schema.field("thumbnail").type),
            ],
            schema=schema,
        )
        pq.write_table(table, folder / E.PENDING_DIR / f"{start:020d}-r000-000000.parquet")
        del table
    start = time.perf_counter()
    B.commit(folder, None, pending, (processor.tokenizer, model.vad_table.numpy()), [])
    return time.perf_counter() - start


def e2e_rows(count, dim, queries, rng, workdir, processor, model):
    folder = workdir / f"e2e-{count}"
    merge = synthetic_index(folder, count, dim, rng, processor, model)
    start = time.perf_counter()
    index = E.EmotionIndex.load(folder)
    load = time.perf_counter() - start
    ids = [f"item-{n:07d}" for n in rng.choice(count, queries, replace=False)]
    mixes = [",".join(f"{name}={w:.2f}" for name, w in zip(index.emotions, weights)) for weights in rng.dirichlet(np.full(len(index.emotions), 0.5), queries)]
    words = ["calm, melancholic", "dark and sad", "bright happy colors", "afraid of the red storm", "peaceful sky"]
    kinds = {
        "emotion mix": lambda n: index.search(emotions=mixes[n]),
        "item, visual_weight 0.3": lambda n: index.search(id=ids[n], visual_weight=0.3),
        "words": lambda n: index.search(text=words[n % len(words)]),
        "emotion mix + filter (sadness, score >= 0.3)": lambda n: index.search(emotions=mixes[n], emotion="sadness", min_score=0.3),
    }
    rows = []
    for kind, run in kinds.items():
        run(0)  # warm-up (first calls load the tokenizer, touch the memory-mapped pages)
        times = []
        for n in range(queries):
            start = time.perf_counter()
            hits = run(n)
            times.append(time.perf_counter() - start)
            assert len(hits) == 10
        rows.append([f"{count:,}", index.config["faiss_types"]["visual"], f"{merge:.1f}", f"{load:.1f}", kind, f"{1000 * median(times):.1f}"])
        print("  " + " | ".join(rows[-1]), flush=True)
    shutil.rmtree(folder, ignore_errors=True)
    return rows


# ---------------------------------------------------------------------------------------------- hostile files
HOSTILE_SIDE = 13000
BUILD_CHILD = """
import json, resource, sys, warnings
import torch
torch.set_num_threads(1)
warnings.simplefilter("ignore")
from sevlm.index.store import EmotionIndex
files, model, target, batch = json.loads(sys.argv[1])
index = EmotionIndex.build(files, target, model=model, batch_size=batch, device="cpu", progress=False, report=lambda *a: None, notify=lambda line: None)
assert len(index) == len(files), index.build_report
print("PEAK", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""
APP_CHILD = """
import json, resource, sys, tempfile, warnings
import torch
torch.set_num_threads(1)
warnings.simplefilter("ignore")
from gradio.components.image import ImageData
from gradio.image_utils import preprocess_image
from sevlm.app import Explainer
from sevlm.loading import load_model_and_processor
path, model, kind = json.loads(sys.argv[1])
model, processor = load_model_and_processor(model, "cpu")
explainer = Explainer(model, processor)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
upload = preprocess_image(ImageData(path=path, orig_name="upload.png"), cache_dir=tempfile.mkdtemp(), format="webp",
                          image_mode="RGB" if kind == "pil" else None, type=kind)
emotion = explainer.card(upload, None, None, 1, False, 1.0, 1.0, 42, 0.0)[0]
assert emotion in explainer.emotions
print("PEAK", before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""


def hostile_pngs(folder, count):
    """`count` PNG files of 13000 x 13000 16-bit pixels: zeros, so a few hundred KB each, 338 MB once decoded."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    first = folder / "hostile-0.png"
    Image.fromarray(np.zeros((HOSTILE_SIDE, HOSTILE_SIDE), dtype=np.uint16)).save(first)
    paths = [first]
    for number in range(1, count):
        paths.append(folder / f"hostile-{number}.png")
        shutil.copyfile(first, paths[-1])
    return paths


def child_peak(script, argument):
    """The peak resident memory (bytes) a fresh Python process reports after running `script`."""
    import json

    env = {**_common.os.environ, "PYTHONPATH": str(_common.REPO_ROOT), "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", script, json.dumps(argument)], capture_output=True, text=True, env=env, timeout=1800)
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-3000:])
    return [int(value) for value in result.stdout.split("PEAK", 1)[1].split()]


def hostile_rows(count, model_folder, workdir):
    hostile = hostile_pngs(workdir / "hostile", count)
    ordinary = paintings(workdir / "ordinary", count)
    size_kb = hostile[0].stat().st_size / 1024
    rows, peaks = [], {}
    for name, files in (("512x384 JPEG paintings", ordinary), (f"{HOSTILE_SIDE}x{HOSTILE_SIDE} 16-bit PNG ({size_kb:.0f} KB)", hostile)):
        target = workdir / f"hostile-index-{len(peaks)}"
        (peak,) = child_peak(BUILD_CHILD, [[str(path) for path in files], str(model_folder), str(target), 8])
        shutil.rmtree(target, ignore_errors=True)
        peaks[name] = peak
        rows.append(["sevlm-index", f"{count} x {name}, batch 8", f"{peak / 2**30:.2f}", f"{peak / next(iter(peaks.values())):.1f}x"])
        print("  " + " | ".join(rows[-1]), flush=True)
    app = {}
    for kind, label in (("pil", "Gradio decodes the upload (type=pil, before)"), ("filepath", "the app reads the file, bounded (type=filepath, now)")):
        loaded, peak = child_peak(APP_CHILD, [str(hostile[0]), str(model_folder), kind])
        app[kind] = peak - loaded
        rows.append(["app, one request", label, f"{peak / 2**30:.2f} (+{(peak - loaded) / 2**30:.2f} for the request)", f"{app[kind] / app.get('pil', app[kind]):.2f}x"])
        print("  " + " | ".join(rows[-1]), flush=True)
    return rows


# ------------------------------------------------------------------------------------------------------ main
def load_line():
    share = _common.machine_busy_share(3.0)
    return "share of the CPUs busy with other processes just before: " + ("unknown" if share is None else f"{100 * share:.0f}%")


def thread_counts(device, cores):
    """Torch threads of the build rows: on the CPU, 1 and all (the model's work); on a GPU, torch's default."""
    return sorted({1, cores}) if device.type == "cpu" else [cores]


def main():
    args = parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: no CUDA device is visible to torch; use --device cpu.")
    sizes = [int(size) for size in args.sizes.split(",") if size.strip()]
    if args.quick:  # tiny sizes everywhere; `--sizes ''` still skips the FAISS and end-to-end tables
        sizes = [3000, 12000] if sizes else []
        args.dim, args.queries, args.e2e_queries = 32, 20, 5
        args.build_images, args.real_images = 16, 4
        F.APPROXIMATE_FROM = F.APPROXIMATE_FROM_LOW_DIM = 10_000
    if args.wait_quiet:
        _common.wait_for_quiet(args.wait_quiet)
    rng = np.random.default_rng(0)
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="sevlm-bench-index-"))
    print("\n".join(machine_lines(device)))
    print(
        f"approximate (IVF) indexes from {F.APPROXIMATE_FROM:,} items ({F.APPROXIMATE_FROM_LOW_DIM:,} for vectors of at most "
        f"{F.LOW_DIM} numbers); IVF lists ~ sqrt(N), nprobe = lists / 32 (at least 16)\n",
        flush=True,
    )
    try:
        folder, description = demo_model(workdir, args.model)
        cores = torch.get_num_threads()
        build = []
        if not args.skip_build:
            print("1. Build throughput (EmotionIndex.build: decode, predict_batch, thumbnails, batch files, merge, FAISS)", flush=True)
            print("  " + load_line(), flush=True)
            files = paintings(workdir / "paintings", max(args.build_images, args.real_images))
        if device.type == "cuda" and not args.skip_build:  # the CUDA context and cuBLAS start outside the timing
            (torch.ones(64, 64, device=device) @ torch.ones(64, 64, device=device)).sum().item()
        for threads in thread_counts(device, cores) if not args.skip_build else []:
            build.append(measure_build(f"demo model: {description}", files[: args.build_images], workdir, args.batch_size, threads, args.device, model=str(folder)))
            print("  " + " | ".join(map(str, build[-1])), flush=True)
        if not args.skip_real and not args.skip_build:
            model, processor, *_, seconds = _common.build_model(quick=args.quick)
            model.to(device)  # a loaded model predicts where it is
            print(f"  ({'tiny' if args.quick else 'real-size'} model built in {seconds:.0f} s)", flush=True)
            B.predict_rows(model, processor, [processor.preprocess_images([str(path)]) for path in files[:2]])  # warm-up: the first forward passes allocate
            name = "tiny (--quick), random weights" if args.quick else "real size (ViT-B/16 + distilGPT-2), random weights, 25 new tokens"
            for threads in thread_counts(device, cores):
                batch = args.batch_size if device.type == "cuda" else 8  # a GPU takes the larger batches
                build.append(measure_build(name, files[: args.real_images], workdir, batch, threads, args.device, model=model, processor=processor))
                print("  " + " | ".join(map(str, build[-1])), flush=True)
            del model, processor
        torch.set_num_threads(cores)
        if build:
            print(format_table(["model", "device", "torch threads", "images", "batch", "seconds", "images/s", "in predict_batch"], build) + "\n", flush=True)

        if args.hostile:
            print(f"4. Hostile images: peak memory of a fresh process (demo model: {description})", flush=True)
            rows = hostile_rows(args.hostile, folder, workdir)
            print(format_table(["what", "input", "peak GB", "ratio"], rows) + "\n", flush=True)
        if not sizes:
            return
        print(f"2. FAISS, one query, k=10, one thread (visual: {args.dim}-d)", flush=True)
        print("  " + load_line(), flush=True)
        faiss_table = []
        for count in sizes:
            faiss_table += faiss_rows(count, args.dim, args.queries, rng)
        print(format_table(["items", "part", "index", "build s", "query ms", "recall@10"], faiss_table) + "\n", flush=True)

        if not args.skip_e2e:
            print(f"3. EmotionIndex.search end to end, top 10 (visual: {args.dim}-d; tokenizer and VAD table of the demo model)", flush=True)
            print("  " + load_line(), flush=True)
            from sevlm.loading import load_model_and_processor

            model, processor = load_model_and_processor(str(folder), "cpu")
            e2e = []
            for count in sizes:
                e2e += e2e_rows(count, args.dim, args.e2e_queries, rng, workdir, processor, model)
            print(format_table(["items", "visual index", "merge s", "load s", "query", "query ms"], e2e), flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
