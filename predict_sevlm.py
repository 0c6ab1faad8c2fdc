"""Name the emotion a painting evokes and explain it, for image files, folders or glob patterns.

    python predict_sevlm.py painting.jpg                           # JSON lines on stdout
    python predict_sevlm.py paintings/ "more/**/*.png" --output predictions.csv --cards cards/
    sevlm-predict paintings/ --model_name_or_path outputs/sevlm-artemis --emotion awe --output awe.jsonl

Each image gives one row: file, emotion, score, the score of every emotion and the explanation (the semantics
are those of the `art-emotion` pipeline, see pipeline_sevlm.py). Files that cannot be read are reported on stderr
and skipped. The exit status is 0 when at least one image was predicted, 1 otherwise.
"""

import argparse
import csv
import glob
import json
import os
import sys
import textwrap
import warnings
from pathlib import Path

DEMO_MODEL = "outputs/sevlm-demo"
TASK = "art-emotion"
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")
CARD_SIZE = (1200, 600)  # pixels
CARD_DPI = 100
# Bar colours by ArtEmis group; any other class name gets the neutral colour.
POSITIVE = {"amusement", "awe", "contentment", "excitement"}
NEGATIVE = {"anger", "disgust", "fear", "sadness"}
COLORS = {"positive": "#e0a526", "negative": "#3a6ea5", "other": "#8c8c8c"}


# ---------------------------------------------------------------------------------------------- arguments
def build_parser():
    parser = argparse.ArgumentParser(
        prog="sevlm-predict", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "inputs",
        nargs="+",
        help="Image files, folders (searched recursively for image files) or glob patterns such as 'art/**/*.jpg' "
        "(quote them so that the shell does not expand them).",
    )
    parser.add_argument(
        "--model_name_or_path",
        "--model",
        default=DEMO_MODEL,
        help=f"Saved SEVLM folder or Hub id, loaded with trust_remote_code (default: {DEMO_MODEL}).",
    )
    parser.add_argument(
        "--output",
        help="Where the predictions go: a .jsonl file (one JSON object per image) or a .csv file (one column per "
        "emotion score). Default: JSON lines on stdout.",
    )
    parser.add_argument(
        "--cards",
        metavar="DIR",
        help=f"Also write one PNG card per image into DIR ({CARD_SIZE[0]}x{CARD_SIZE[1]} pixels): the painting, the "
        "emotion with a bar chart of all emotion scores, and the explanation. Named after the image file.",
    )
    parser.add_argument("--batch_size", type=int, default=8, help="Images encoded and generated together (default: 8).")
    parser.add_argument("--device", help="cuda, cuda:1, mps or cpu. Default: CUDA, then MPS, then CPU.")
    parser.add_argument(
        "--emotion",
        help="Explain this emotion (one of the model's classes, e.g. awe) for every image instead of the predicted one; "
        "the score is then the model's own probability of it.",
    )
    parser.add_argument(
        "--extensions",
        default=",".join(IMAGE_EXTENSIONS),
        help="Comma-separated file extensions picked up in folders and globs (default: %(default)s). Files named "
        "directly are always tried.",
    )
    generation = parser.add_argument_group("generation (defaults: the model's generation config, greedy)")
    generation.add_argument("--max_new_tokens", type=int, help="Most tokens generated for the explanation (model default: 25).")
    generation.add_argument("--num_beams", type=int, help="Beam width (1: greedy).")
    generation.add_argument("--do_sample", action="store_true", help="Sample the explanation instead of greedy/beam decoding.")
    generation.add_argument("--temperature", type=float, help="Sampling temperature (with --do_sample).")
    generation.add_argument("--top_p", type=float, help="Nucleus sampling mass (with --do_sample).")
    generation.add_argument("--top_k", type=int, help="Top-k sampling cut-off (with --do_sample).")
    generation.add_argument("--seed", type=int, default=42, help="Random seed, for reproducible sampling (default: 42).")
    parser.add_argument("--no_progress", action="store_true", help="Hide the progress bar.")
    return parser


def parse_args(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error(f"--batch_size must be at least 1, got {args.batch_size}.")
    if args.output and output_format(args.output) is None:
        parser.error(f"--output {args.output}: use a file name ending in .jsonl or .csv.")
    return args


def output_format(path):
    suffix = Path(path).suffix.lower()
    return {".jsonl": "jsonl", ".json": "jsonl", ".csv": "csv"}.get(suffix)


def generate_kwargs(args):
    """The generation flags that were given (the model's generation config supplies the others)."""
    names = ["max_new_tokens", "num_beams"]
    if args.do_sample:
        names += ["temperature", "top_p", "top_k"]
    kwargs = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    if args.do_sample:
        kwargs["do_sample"] = True
    return kwargs


# ------------------------------------------------------------------------------------------------- inputs
def find_images(inputs, extensions=IMAGE_EXTENSIONS):
    """Expand files, folders (recursive) and glob patterns into image paths.

    Returns `(paths, problems)`: paths in a stable order without duplicates, and `(input, reason)` for inputs that
    matched nothing.
    """
    extensions = {ext.lower() if ext.startswith(".") else "." + ext.lower() for ext in extensions}
    paths, problems, seen = [], [], set()

    def add(path):
        key = os.path.abspath(path)
        if key not in seen:
            seen.add(key)
            paths.append(Path(path))

    for item in inputs:
        if os.path.isfile(item):
            add(item)
        elif os.path.isdir(item):
            found = sorted(p for p in Path(item).rglob("*") if p.is_file() and p.suffix.lower() in extensions)
            if not found:
                problems.append((item, f"folder holds no image files ({', '.join(sorted(extensions))})"))
            for path in found:
                add(path)
        elif glob.has_magic(item):
            found = sorted(p for p in glob.glob(item, recursive=True) if os.path.isfile(p) and Path(p).suffix.lower() in extensions)
            if not found:
                problems.append((item, "pattern matches no image files"))
            for path in found:
                add(path)
        else:
            problems.append((item, "no such file or folder"))
    return paths, problems


def read_image(path):
    """The image at `path` as an RGB PIL image (the processor's conversion); ValueError naming the file if unreadable."""
    from processing_sevlm import to_rgb_image

    return to_rgb_image(str(path))


# -------------------------------------------------------------------------------------------------- model
def pick_device(requested):
    import torch

    if requested:
        return requested
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def load_pipeline(model_name_or_path, device=None):
    """The model folder's `art-emotion` pipeline. Folders saved before the pipeline existed get this repository's."""
    from transformers import AutoConfig, pipeline

    if model_name_or_path == DEMO_MODEL and not os.path.exists(DEMO_MODEL):
        raise FileNotFoundError(f"No model at {DEMO_MODEL}. Train the demo model first (python train_sevlm.py) or pass --model_name_or_path.")
    device = pick_device(device)
    config = AutoConfig.from_pretrained(model_name_or_path, trust_remote_code=True)
    if TASK in (getattr(config, "custom_pipelines", None) or {}):
        return pipeline(TASK, model=model_name_or_path, trust_remote_code=True, device=device)
    from transformers import AutoModel, AutoProcessor

    from pipeline_sevlm import SevlmArtEmotionPipeline

    print(f"{model_name_or_path} has no {TASK} pipeline in its config; using pipeline_sevlm.py from this repository.", file=sys.stderr)
    model = AutoModel.from_pretrained(model_name_or_path, trust_remote_code=True)
    processor = AutoProcessor.from_pretrained(model_name_or_path, trust_remote_code=True)
    return SevlmArtEmotionPipeline(model=model, processor=processor, device=device)


# ---------------------------------------------------------------------------------------------- predicting
def predict(pipe, paths, batch_size=8, emotion=None, generation=None, cards_dir=None, report=None, progress=True):
    """Yield one row per readable image: `{"file", "emotion", "score", "scores", "explanation"[, "card"]}`.

    Unreadable files (and images the model fails on) go to `report(path, message)` and are skipped. Each file is
    read once; the same image feeds the model and the card.
    """
    from tqdm.auto import tqdm

    report = report or (lambda path, message: None)
    generation = dict(generation or {})
    if emotion is not None:
        generation["emotion"] = emotion
    card_names = CardNames(cards_dir) if cards_dir else None
    bar = tqdm(total=len(paths), unit="image", desc="Predicting", disable=not progress, file=sys.stderr)
    try:
        for start in range(0, len(paths), batch_size):
            batch = []
            for path in paths[start : start + batch_size]:
                try:
                    batch.append((path, read_image(path)))
                except Exception as error:  # corrupt, truncated, too large (PIL's decompression-bomb guard), ...
                    report(path, f"cannot be read ({error.__cause__ or error})")
            for path, image, result in _run_batch(pipe, batch, generation, report):
                row = {"file": str(path), **result}
                if card_names is not None:
                    card = card_names.next(path)
                    try:
                        make_card(image, result, card, title=path.name, asked=emotion is not None)
                        row["card"] = str(card)
                    except Exception as error:
                        tqdm.write(f"card for {path} not written ({error}); the prediction is kept", file=sys.stderr)
                yield row
            bar.update(len(paths[start : start + batch_size]))
    finally:
        bar.close()


def _run_batch(pipe, batch, generation, report):
    """Pipeline results for a batch; if the batch fails, image by image, so that one bad image costs only itself."""
    if not batch:
        return []
    images = [image for _, image in batch]
    try:
        results = pipe(images, batch_size=len(images), **generation)
        return [(path, image, result) for (path, image), result in zip(batch, results)]
    except Exception as error:
        if len(batch) == 1:
            report(batch[0][0], f"prediction failed: {error}")
            return []
    outputs = []
    for item in batch:
        outputs.extend(_run_batch(pipe, [item], generation, report))
    return outputs


class CardNames:
    """Card file names from image names (`painting.jpg` -> `painting.png`), numbered when two images share a stem."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.used = set()

    def next(self, path):
        stem = Path(path).stem or "image"
        name, number = f"{stem}.png", 2
        while name in self.used:
            name, number = f"{stem}-{number}.png", number + 1
        self.used.add(name)
        return self.folder / name


# --------------------------------------------------------------------------------------------------- cards
def make_card(image, result, path, title=None, asked=False):
    """Write a PNG card (`CARD_SIZE` pixels): the painting on the left; on the right the emotion and its score,
    a bar chart of every emotion score (the shown emotion highlighted) and the explanation, wrapped.

    `result` is a pipeline result; `asked=True` labels the emotion as requested rather than predicted.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from processing_sevlm import to_rgb_image

    image = to_rgb_image(image)
    emotions = list(result["scores"])
    values = [result["scores"][name] for name in emotions]
    shown = result["emotion"]

    figure = Figure(figsize=(CARD_SIZE[0] / CARD_DPI, CARD_SIZE[1] / CARD_DPI), dpi=CARD_DPI, facecolor="white")
    FigureCanvasAgg(figure)
    # Layout in figure fractions: painting on the left, header / scores / explanation on the right.
    painting = figure.add_axes((0.02, 0.04, 0.44, 0.82))
    painting.imshow(image, interpolation="lanczos" if max(image.size) > 256 else "bicubic")
    painting.set_axis_off()
    if title:
        figure.text(0.02, 0.93, _shorten(title, 70), fontsize=10, color="#777777", va="center")

    label = "asked emotion" if asked else "predicted emotion"
    figure.text(0.50, 0.93, shown, fontsize=30, fontweight="bold", color=_color(shown), va="center")
    figure.text(0.98, 0.93, f"{label}\nscore {result['score']:.0%}", fontsize=12, color="#555555", ha="right", va="center")

    bars = figure.add_axes((0.63, 0.34, 0.31, 0.50))
    positions = list(range(len(emotions)))
    drawn = bars.barh(positions, values, color=[_color(name) for name in emotions], height=0.7)
    for patch, name in zip(drawn, emotions):
        patch.set_alpha(1.0 if name == shown else 0.45)
    for position, name, value in zip(positions, emotions, values):
        weight = "bold" if name == shown else "normal"
        bars.text(min(value, 1.0) + 0.015, position, f"{value:.0%}", va="center", fontsize=10, fontweight=weight)
    bars.set_yticks(positions, emotions, fontsize=11)
    for tick, name in zip(bars.get_yticklabels(), emotions):
        tick.set_fontweight("bold" if name == shown else "normal")
    bars.tick_params(axis="y", length=0)
    bars.invert_yaxis()
    bars.set_xlim(0, 1.15)
    bars.set_xticks([])
    for side in ("top", "right", "bottom"):
        bars.spines[side].set_visible(False)

    explanation = result["explanation"] or "(no explanation generated)"
    wrapped = "\n".join(textwrap.wrap(f"\u201c{explanation}\u201d", width=54, max_lines=4, placeholder=" \u2026"))
    figure.text(0.50, 0.27, f"because\u2026\n{wrapped}", fontsize=14, va="top", ha="left", linespacing=1.4)

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # glyphs missing from the font (e.g. CJK file names) are drawn as boxes
        figure.savefig(path, dpi=CARD_DPI, facecolor="white")
    return Path(path)


def _color(name):
    if name in POSITIVE:
        return COLORS["positive"]
    if name in NEGATIVE:
        return COLORS["negative"]
    return COLORS["other"]


def _shorten(text, width):
    return text if len(text) <= width else text[: width - 1] + "\u2026"


# --------------------------------------------------------------------------------------------------- output
class RowWriter:
    """Streams rows as JSON lines (file or stdout) or CSV; each row is flushed so that partial runs keep their rows."""

    def __init__(self, path, emotions):
        self.path = path
        self.format = output_format(path) if path else "jsonl"
        self.emotions = list(emotions)
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.handle = open(path, "w", encoding="utf-8", newline="")
        else:
            self.handle = sys.stdout
        self.csv = None

    def write(self, row):
        if self.format == "jsonl":
            self.handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        else:
            flat = {key: value for key, value in row.items() if key != "scores"}
            flat.update({score_column(name): value for name, value in row["scores"].items()})
            if self.csv is None:
                columns = ["file", "emotion", "score", "explanation"] + (["card"] if "card" in row else [])
                columns += [score_column(name) for name in self.emotions]
                self.csv = csv.DictWriter(self.handle, fieldnames=columns)
                self.csv.writeheader()
            self.csv.writerow(flat)
        self.handle.flush()

    def close(self):
        if self.handle is not sys.stdout:
            self.handle.close()


def score_column(emotion):
    """CSV column of an emotion's score: `score_something_else`."""
    return "score_" + emotion.replace(" ", "_")


# ----------------------------------------------------------------------------------------------------- main
def main(argv=None):
    args = parse_args(argv)
    paths, problems = find_images(args.inputs, [ext.strip() for ext in args.extensions.split(",") if ext.strip()])
    for item, reason in problems:
        print(f"skipped {item}: {reason}", file=sys.stderr)
    if not paths:
        print("No images to predict: pass image files, folders or glob patterns.", file=sys.stderr)
        return 1

    from transformers import set_seed

    set_seed(args.seed)
    pipe = load_pipeline(args.model_name_or_path, args.device)
    if args.emotion is not None and args.emotion.strip().lower() not in [name.lower() for name in pipe.emotions]:
        print(f"--emotion {args.emotion!r} is not one of the model's emotions: {', '.join(pipe.emotions)}.", file=sys.stderr)
        return 1

    from tqdm.auto import tqdm

    failed = []

    def report(path, message):
        failed.append(str(path))
        tqdm.write(f"skipped {path}: {message}", file=sys.stderr)

    writer = RowWriter(args.output, pipe.emotions)
    done = 0
    try:
        for row in predict(
            pipe,
            paths,
            batch_size=args.batch_size,
            emotion=args.emotion,
            generation=generate_kwargs(args),
            cards_dir=args.cards,
            report=report,
            progress=not args.no_progress,
        ):
            writer.write(row)
            done += 1
    finally:
        writer.close()
    where = f" to {args.output}" if args.output else ""
    cards = f", cards in {args.cards}" if args.cards and done else ""
    print(f"Predicted {done} of {len(paths)} images{where}{cards}.", file=sys.stderr)
    if failed:
        print(f"{len(failed)} file(s) could not be used: {', '.join(failed)}", file=sys.stderr)
    return 0 if done else 1


if __name__ == "__main__":
    sys.exit(main())
