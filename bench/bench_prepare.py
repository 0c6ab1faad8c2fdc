"""Data preparation at ArtEmis scale, on generated ArtEmis-shaped data (the real release cannot be shipped).

Generates, in a temporary folder:
  - a raw CSV shaped like `artemis_dataset_release_v0.csv`: ~455k rows over 80,031 paintings (5-10 rows each, 701
    high-coverage paintings with 41-50), raw utterances (capitals, punctuation, commas, quotes, double spaces), rows
    of a painting scattered through the file, a few NFD names and WikiArt mojibake names (`joaquã\\xadn-...`);
  - the matching `artemis_preprocessed.csv` as ArtEmis's `preprocess_artemis_data.py --preprocess-for-deep-nets
    True` writes it (`write_preprocessed_csv`): the official split (rest for repetition >= 41, after the other
    rows), its tokens (`''` from quotes kept), rows under 5 tokens or above the training split's 95th length
    percentile dropped, its vocabulary encoding. On the generated data this file is byte for byte the one ArtEmis's
    own script writes (compared with `python -m dataset_scripts.run_artemis_preprocessing`);
  - one small JPEG per painting (default 32x32; a few stored with Info-ZIP `#Uxxxx` names), written in parallel;
then times `prepare_artemis` with the preprocessed CSV (CSV stage and image stage separately, `--num_proc 2`) and
the CSV stage of the raw CSV with the official split, and prints the split sizes, times and disk use.

    python bench/bench_prepare.py                    # full size (5-10 minutes on 2 cores, ~0.6 GB of disk)
    python bench/bench_prepare.py --paintings 5000   # a quick run
    python bench/bench_prepare.py --large_sample 300 # also time decoding 300 painting-sized JPEGs (1600x1200)

Everything generated is deleted at the end unless `--keep DIR` is given.
"""

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from sevlm.data.lookalike import (  # noqa: E402
    NUM_PAINTINGS,
    write_artemis_shaped,
)


def folder_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(root, name)) for name in files)
    return total


def smooth_painting(rng, width=1600, height=1200):
    """A painting-like picture (smooth colour fields and strokes) that compresses like a real scan."""
    small = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    image = Image.fromarray(small).resize((width, height), Image.Resampling.BICUBIC)
    pixels = np.asarray(image, dtype=np.float32) + rng.normal(0, 6, (height, width, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def time_large_images(count, max_side, folder):
    """Seconds per image for decode + resize + re-encode of painting-sized JPEGs (one process), and sizes."""
    from sevlm.data.corpus import decode_image

    rng = np.random.default_rng(0)
    paths = []
    for index in range(count):
        path = Path(folder) / f"large-{index}.jpg"
        smooth_painting(rng).save(path, format="JPEG", quality=92)
        paths.append(path)
    started = time.perf_counter()
    encoded = [decode_image(path, max_side) for path in paths]
    seconds = (time.perf_counter() - started) / count
    return seconds, np.mean([path.stat().st_size for path in paths]), np.mean([len(data) for data in encoded])


def photo_sizes(max_side):
    """Stored size of real photos (scikit-learn's two sample JPEGs, when installed) at `max_side`: real texture
    compresses worse than generated pictures."""
    from sevlm.data.corpus import decode_image

    try:
        import sklearn.datasets
    except ImportError:
        return {}
    folder = Path(sklearn.datasets.__file__).parent / "images"
    return {path.name: len(decode_image(path, max_side)) for path in sorted(folder.glob("*.jpg"))}


def uptime_text():
    """The load average: other jobs on the machine slow the wall times down."""
    try:
        return "load average " + " ".join(f"{value:.1f}" for value in os.getloadavg())
    except OSError:
        return "load average unknown"


def table(rows):
    widths = [max(len(str(row[column])) for row in rows) for column in range(len(rows[0]))]
    return "\n".join("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)) for row in rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--paintings", type=int, default=NUM_PAINTINGS, help="Paintings to generate (default: %(default)s).")
    parser.add_argument("--image_side", type=int, default=32, help="Side of the generated JPEGs (default: %(default)s).")
    parser.add_argument("--num_proc", type=int, default=2, help="--num_proc of the preparation (default: %(default)s).")
    parser.add_argument("--large_sample", type=int, default=0,
                        help="Also time decoding this many 1600x1200 painting-like JPEGs (default: none).")
    parser.add_argument("--keep", default=None, help="Generate into this folder and keep everything.")
    args = parser.parse_args(argv)

    from datasets import disable_progress_bars

    from sevlm.data.artemis import build_annotation_table, prepare_artemis

    disable_progress_bars()
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-prepare-"))
    try:
        print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; folder {folder}")
        generated = write_artemis_shaped(folder / "input", args.paintings, image_side=args.image_side,
                                         processes=max(args.num_proc, 1))
        timings = generated["timings"]
        print(f"generated {generated['rows']} raw rows over {len(generated['paintings'])} paintings "
              f"({timings['raw_csv']:.1f} s), {generated['preprocessed_rows']} preprocessed rows "
              f"({generated['preprocessed_dropped']} dropped; {timings['preprocessed_csv']:.1f} s), "
              f"{len(generated['paintings'])} {args.image_side}x{args.image_side} JPEGs ({timings['images']:.1f} s)")

        # CSV stages alone, in this process: wall time and CPU time (the CPU time does not depend on other jobs).
        started, cpu = time.perf_counter(), time.process_time()
        raw = build_annotation_table(generated["raw_csv"])
        raw_seconds, raw_cpu = time.perf_counter() - started, time.process_time() - cpu
        started, cpu = time.perf_counter(), time.process_time()
        build_annotation_table(generated["raw_csv"], artemis_preprocessed_csv=generated["preprocessed_csv"])
        pre_seconds, pre_cpu = time.perf_counter() - started, time.process_time() - cpu

        output = folder / "artemis-v1"
        command = (f"prepare_artemis --artemis_preprocessed_csv ... --artemis_csv ... --wikiart_dir ... "
                   f"--num_proc {args.num_proc}")
        started = time.perf_counter()
        prepared = prepare_artemis(generated["raw_csv"], generated["wikiart_dir"], output,
                                   artemis_preprocessed_csv=generated["preprocessed_csv"], num_proc=args.num_proc)
        total = time.perf_counter() - started
        import json

        report = json.loads((output / "prepare_report.json").read_text(encoding="utf-8"))
        seconds = report["seconds"]

        print("\nSplit sizes (paintings / annotations):")
        rows = [("corpus", "train", "validation", "test", "dropped")]
        rows.append(("raw CSV, official split", *(f"{len(raw[s])} / {sum(map(len, raw[s]['emotions']))}" for s in raw),
                     "-"))
        dropped = ", ".join(f"{k} {v}" for k, v in sorted(report["annotations"]["dropped"].items()))
        rows.append(("preprocessed CSV", *(f"{report['splits'][s]['paintings']} / {report['splits'][s]['annotations']}"
                                            for s in ("train", "validation", "test")), dropped))
        print(table(rows))

        images = len(prepared["train"]) + len(prepared["validation"]) + len(prepared["test"])
        print(f"\nTimes (s; wall, and CPU of this process where it is the only worker; {uptime_text()}):")
        print(table([
            ("stage", "wall", "CPU"),
            (f"CSV stage alone, raw CSV, official split ({generated['rows']} rows)", f"{raw_seconds:.1f}", f"{raw_cpu:.1f}"),
            (f"CSV stage alone, preprocessed CSV ({generated['preprocessed_rows']} rows) + raw CSV (histograms)",
             f"{pre_seconds:.1f}", f"{pre_cpu:.1f}"),
            (f"{command}:", "", ""),
            ("  CSV stage", f"{seconds['csv_stage']:.1f}", ""),
            (f"  image stage ({images} images, {args.image_side} px, num_proc {args.num_proc})",
             f"{seconds['image_stage']:.1f}", ""),
            ("  saving", f"{seconds['save']:.1f}", ""),
            ("  total", f"{total:.1f}", ""),
        ]))
        sizes = [("file", "MiB"),
                 ("raw CSV", f"{generated['raw_csv'].stat().st_size / 2**20:.0f}"),
                 ("preprocessed CSV", f"{generated['preprocessed_csv'].stat().st_size / 2**20:.0f}"),
                 (f"generated images ({args.image_side} px)", f"{folder_bytes(generated['wikiart_dir']) / 2**20:.0f}"),
                 ("prepared corpus", f"{folder_bytes(output) / 2**20:.0f}")]
        print("\nDisk:")
        print(table(sizes))
        if args.large_sample:
            per_image, source_bytes, stored_bytes = time_large_images(args.large_sample, 448, folder)
            print(f"\nPainting-sized JPEGs (1600x1200, {source_bytes / 1024:.0f} KiB each): decode + resize to 448 px "
                  f"+ re-encode {per_image * 1000:.1f} ms per image in one process, {stored_bytes / 1024:.0f} KiB "
                  f"stored; 80,031 images: ~{80031 * per_image / 60 / max(args.num_proc, 1):.0f} min with "
                  f"--num_proc {args.num_proc}, ~{80031 * stored_bytes / 2**30:.1f} GiB prepared.")
            for name, size in photo_sizes(448).items():
                print(f"Real photo {name} stored at 448 px: {size / 1024:.0f} KiB (80,031 such: "
                      f"{80031 * size / 2**30:.1f} GiB)")
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
