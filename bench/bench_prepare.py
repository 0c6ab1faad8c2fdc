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
import csv
import multiprocessing
import os
import platform
import random
import re
import shutil
import tempfile
import time
import unicodedata
from collections import Counter
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from configuration_sevlm import ARTEMIS_EMOTIONS  # noqa: E402

STYLES = ["Abstract_Expressionism", "Action_painting", "Analytical_Cubism", "Art_Nouveau_Modern", "Baroque",
          "Color_Field_Painting", "Contemporary_Realism", "Cubism", "Early_Renaissance", "Expressionism", "Fauvism",
          "High_Renaissance", "Impressionism", "Mannerism_Late_Renaissance", "Minimalism", "Naive_Art_Primitivism",
          "New_Realism", "Northern_Renaissance", "Pointillism", "Pop_Art", "Post_Impressionism", "Realism", "Rococo",
          "Romanticism", "Symbolism", "Synthetic_Cubism", "Ukiyo_e"]
ARTISTS = ["claude-monet", "pablo-picasso", "vincent-van-gogh", "rembrandt", "albrecht-durer", "ivan-aivazovsky",
           "pierre-auguste-renoir", "gustave-dore", "john-singer-sargent", "camille-pissarro", "marc-chagall",
           "salvador-dali", "edgar-degas", "paul-cezanne", "henri-matisse", "francisco-goya", "titian"]
WORDS = ("the colors are dark and woman looks sad lonely bright happy calm sky sea storm mountain face eyes red blue "
         "green yellow strange shapes lines make me feel peaceful angry scared excited amused because of how light "
         "falls on her dress it reminds of a quiet evening with friends old man seems tired").split()
TITLE_WORDS = "portrait landscape still-life view river garden woman man boats church winter night study".split()
EMOTION_WEIGHTS = [0.08, 0.14, 0.26, 0.12, 0.02, 0.05, 0.12, 0.12, 0.09]
V1_HEADER = ["art_style", "painting", "emotion", "utterance", "repetition"]
PREPROCESSED_HEADER = ["art_style", "painting", "emotion", "utterance", "repetition", "split", "tokens", "tokens_len",
                       "utterance_spelled", "tokens_encoded", "emotion_label"]
HIGH_COVERAGE = 701
NUM_PAINTINGS = 80031
MOJIBAKE = "joaquã\xadn-sorolla"  # WikiArt's mojibake: U+00E3, then an invisible soft hyphen U+00AD


# ---------------------------------------------------------------------------------------------- generation
def painting_names(num_paintings, seed=0, high_coverage=HIGH_COVERAGE):
    """[(style, name, repetition)]: names unique, a few NFD-spelled and mojibake; `high_coverage` paintings with
    41-50 annotations, the others 5 (most) to 10."""
    rng = random.Random(seed)
    paintings = []
    for index in range(num_paintings):
        style = STYLES[index % len(STYLES)]
        if index % 997 == 5:
            name = f"{MOJIBAKE}_portrait-of-antonio-elegido-{index}"
        elif index % 991 == 7:
            name = unicodedata.normalize("NFD", f"édouard-manet_café-concert-{index}")  # NFD in the CSV
        else:
            name = f"{rng.choice(ARTISTS)}_{rng.choice(TITLE_WORDS)}-{rng.choice(TITLE_WORDS)}-{index}"
        if index < high_coverage:
            repetition = rng.randint(41, 50)
        else:
            repetition = rng.choices([5, 6, 7, 8, 9, 10], [0.84, 0.08, 0.04, 0.02, 0.01, 0.01])[0]
        paintings.append((style, name, repetition))
    rng.shuffle(paintings)
    return paintings


def raw_utterance(rng):
    # ArtEmis's preprocessing drops utterances under 5 tokens: about 2% here.
    words = [rng.choice(WORDS) for _ in range(rng.randint(3, 4) if rng.random() < 0.03 else rng.randint(5, 28))]
    words[0] = words[0].capitalize()
    if len(words) > 6 and rng.random() < 0.5:
        words[rng.randint(1, len(words) - 2)] += ","
    text = " ".join(words)
    if rng.random() < 0.15:
        text = text.replace(" ", "  ", 1)  # a double space
    if rng.random() < 0.1:
        text = f'{text} "I\'m" {rng.choice(WORDS)}'
    return text + rng.choice([".", "", "!", "..."])


def write_raw_csv(path, paintings, seed=0, block=3000):
    """The raw release's shape; a painting's rows are scattered within blocks of `block` paintings."""
    rng = random.Random(seed + 1)
    rows = 0
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(V1_HEADER)
        for start in range(0, len(paintings), block):
            chunk = []
            for style, name, repetition in paintings[start:start + block]:
                for _ in range(repetition):
                    emotion = rng.choices(ARTEMIS_EMOTIONS, EMOTION_WEIGHTS)[0]
                    chunk.append([style, name, emotion, raw_utterance(rng), repetition])
            rng.shuffle(chunk)
            writer.writerows(chunk)
            rows += len(chunk)
    return rows


# ArtEmis's text preprocessing (`artemis/language/basics.py: pre_process_text`) as it acts on the utterances generated
# here (words of WORDS, commas, . ! ..., and `"I'm"`): lower case; a quote, word characters and a quote lose the two
# quotes (`unquote_words`: `"i'm"` -> ` i m"`); these punctuation marks become spaces; NLTK's word tokenizer splits on
# spaces and makes a closing `"` the token `''` (an opening one "``"). Its spell checking changes none of these words.
ARTEMIS_QUOTED_WORD = re.compile(r"""['|"]\w+['|"]""")
ARTEMIS_PUNCTUATION_TO_SPACE = str.maketrans(dict.fromkeys(".?!,:;/\\-~*_=[–]{}$^@|%#<—>", " "))
# `--preprocess-for-deep-nets True`: fewer tokens than this, or more than this percentile of the training split's
# lengths (all rows before any drop), and a row is dropped; words used fewer times in training become <unk>.
ARTEMIS_TOO_SHORT, ARTEMIS_TOO_LONG_PERCENTILE, ARTEMIS_MIN_WORD_FREQ = 5, 95, 5
ARTEMIS_SPECIAL = {"<pad>": 0, "<sos>": 1, "<eos>": 2, "<unk>": 3}


def artemis_tokens(utterance):
    """The tokens ArtEmis's preprocessing makes of a generated utterance (see above)."""
    text = ARTEMIS_QUOTED_WORD.sub(lambda match: f" {match.group()[1:-1]} ", utterance.lower())
    tokens = []
    for word in text.translate(ARTEMIS_PUNCTUATION_TO_SPACE).split():
        opening, word = word.startswith('"'), word.lstrip('"')
        closing, word = word.endswith('"'), word.rstrip('"')
        tokens += ["``"] * opening + [word] * bool(word) + ["''"] * closing
    return tokens


def artemis_vocabulary(train_tokens):
    """ArtEmis's `build_vocab`: the special symbols, then the training words used at least ARTEMIS_MIN_WORD_FREQ
    times, in the order they first occur."""
    counts = Counter(token for tokens in train_tokens for token in tokens)
    words = [word for word, count in counts.items() if count >= ARTEMIS_MIN_WORD_FREQ]
    return {**ARTEMIS_SPECIAL, **{word: index for index, word in enumerate(words, start=len(ARTEMIS_SPECIAL))}}


def artemis_encode(tokens, vocabulary, max_len):
    """ArtEmis's `Vocabulary.encode`: <sos>, the first max_len token ids, <eos>, <pad> up to max_len + 2."""
    ids = [vocabulary.get(token, ARTEMIS_SPECIAL["<unk>"]) for token in tokens][:max_len]
    padding = [ARTEMIS_SPECIAL["<pad>"]] * (max_len - len(tokens))
    return [ARTEMIS_SPECIAL["<sos>"], *ids, ARTEMIS_SPECIAL["<eos>"], *padding]


def write_preprocessed_csv(raw_csv, path, unit_splits):
    """`artemis_preprocessed.csv` as ArtEmis's `preprocess_artemis_data.py --preprocess-for-deep-nets True` writes
    it from the generated raw CSV: the official split of each row (`unit_splits`: art_style + painting -> split),
    the rows with repetition >= 41 after the others as `rest`; rows under 5 tokens or above the 95th percentile of
    the training split's token lengths dropped; tokens, tokens_len, utterance_spelled, tokens_encoded (vocabulary of
    the kept training rows) and emotion_label. Returns (rows written, rows dropped)."""
    names = {"validation": "val"}
    with open(raw_csv, encoding="utf-8", newline="") as source:
        reader = csv.reader(source)
        next(reader)
        rows = [(style, name, emotion, text, int(repetition)) for style, name, emotion, text, repetition in reader]
    rows = [row for row in rows if row[4] < 41] + [row for row in rows if row[4] >= 41]
    splits = [names.get(unit_splits[style + name], unit_splits[style + name]) if repetition < 41 else "rest"
              for style, name, _, _, repetition in rows]
    tokens = [artemis_tokens(row[3]) for row in rows]
    train_lengths = [len(t) for t, split in zip(tokens, splits) if split == "train"]
    too_long = np.percentile(train_lengths, ARTEMIS_TOO_LONG_PERCENTILE)
    kept = [i for i, t in enumerate(tokens) if ARTEMIS_TOO_SHORT <= len(t) <= too_long]
    vocabulary = artemis_vocabulary(tokens[i] for i in kept if splits[i] == "train")
    with open(path, "w", encoding="utf-8", newline="") as sink:
        writer = csv.writer(sink, lineterminator="\n")  # pandas' to_csv
        writer.writerow(PREPROCESSED_HEADER)
        for i in kept:
            style, name, emotion, utterance, repetition = rows[i]
            writer.writerow([style, name, emotion, utterance, repetition, splits[i], repr(tokens[i]), len(tokens[i]),
                             " ".join(tokens[i]), repr(artemis_encode(tokens[i], vocabulary, int(too_long))),
                             ARTEMIS_EMOTIONS.index(emotion)])
    return len(kept), len(rows) - len(kept)


def image_file_name(name):
    """Most files as named; mojibake ones stored with Info-ZIP escapes, as an Info-ZIP unpacking can leave them;
    NFD names from the CSV stored in NFC, as in the WikiArt archive."""
    if name.startswith(MOJIBAKE):
        return "".join(char if ord(char) < 128 else f"#U{ord(char):04x}" for char in name) + ".jpg"
    return unicodedata.normalize("NFC", name) + ".jpg"


def _write_images(job):
    folder, items, side, seed = job
    rng = np.random.default_rng(seed)
    for style, name in items:
        base = rng.integers(0, 256, 3)
        pixels = np.clip(base + rng.normal(0, 12, (side, side, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(os.path.join(folder, style, image_file_name(name)), format="JPEG", quality=85)
    return len(items)


def write_images(wikiart_dir, paintings, side=32, processes=2, chunk=2000):
    """One `side` x `side` JPEG per painting at <wikiart_dir>/<style>/<name>.jpg, in parallel."""
    for style in {style for style, _, _ in paintings}:
        os.makedirs(os.path.join(wikiart_dir, style), exist_ok=True)
    items = [(style, name) for style, name, _ in paintings]
    jobs = [(str(wikiart_dir), items[start:start + chunk], side, start) for start in range(0, len(items), chunk)]
    if processes > 1:
        with multiprocessing.get_context("fork").Pool(processes) as pool:
            return sum(pool.map(_write_images, jobs))
    return sum(map(_write_images, jobs))


def write_artemis_shaped(folder, num_paintings, seed=0, image_side=32, processes=2, high_coverage=HIGH_COVERAGE,
                         images=True):
    """Raw CSV, preprocessed CSV and WikiArt folder under `folder`; returns their paths and counts."""
    from sevlm.data.artemis import official_split

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paintings = painting_names(num_paintings, seed, high_coverage)
    raw_csv, preprocessed_csv, wikiart = folder / "artemis_dataset_release_v0.csv", folder / "artemis_preprocessed.csv", folder / "wikiart"
    timings = {}
    started = time.perf_counter()
    rows = write_raw_csv(raw_csv, paintings, seed)
    timings["raw_csv"] = time.perf_counter() - started
    started = time.perf_counter()
    units = {style + name for style, name, repetition in paintings if repetition < 41}
    written, dropped = write_preprocessed_csv(raw_csv, preprocessed_csv, official_split(units))
    timings["preprocessed_csv"] = time.perf_counter() - started
    started = time.perf_counter()
    if images:
        write_images(wikiart, paintings, image_side, processes)
    timings["images"] = time.perf_counter() - started
    return {"raw_csv": raw_csv, "preprocessed_csv": preprocessed_csv, "wikiart_dir": wikiart, "rows": rows,
            "paintings": paintings, "preprocessed_rows": written, "preprocessed_dropped": dropped, "timings": timings}


# ------------------------------------------------------------------------------------------------ measuring
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
