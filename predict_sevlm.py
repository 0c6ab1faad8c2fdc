"""Name the emotion an image evokes and explain it, for image files, folders or glob patterns.

    python predict_sevlm.py painting.jpg                           # JSON lines on stdout
    python predict_sevlm.py paintings/ "more/**/*.png" --output predictions.csv --cards cards/
    sevlm-predict paintings/ --model_name_or_path outputs/sevlm-artemis --emotion awe --output awe.jsonl

Each image gives one row: file, emotion, score, the score of every emotion and the explanation (the semantics
are those of the `art-emotion` pipeline, see pipeline_sevlm.py). Files that cannot be read are reported on stderr
and skipped. An existing --output file is replaced only once at least one row is written (CTRL-C keeps the rows
written so far). The exit status is 0 when at least one image was predicted, 1 otherwise (130 when interrupted).
"""

import argparse
import csv
import json
import os
import sys
import tempfile
import textwrap
import warnings
from pathlib import Path

from utils_sevlm import IMAGE_EXTENSIONS, check_model_folder, display_path, find_images, pick_device
from utils_sevlm import generation_problems as generation_value_problems

DEMO_MODEL = "outputs/sevlm-demo"
TASK = "art-emotion"
CARD_SIZE = (1200, 600)  # pixels
CARD_DPI = 100
# Bar colours: ArtEmis's classes by group (positive / negative / other); any other class name gets a colour of
# PALETTE by its index in the model's emotion list, so that a class keeps its colour on every card of a model.
POSITIVE = {"amusement", "awe", "contentment", "excitement"}
NEGATIVE = {"anger", "disgust", "fear", "sadness"}
OTHER = {"something else"}
COLORS = {"positive": "#e0a526", "negative": "#3a6ea5", "other": "#8c8c8c"}
PALETTE = (  # matplotlib's tab20 without its greys, dark shades first
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf",
    "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#dbdb8d", "#9edae5",
)  # fmt: skip
HEAT_MAP = "inferno"  # colour map of the attention heat map; its opacity follows the attention
HEAT_MAP_OPACITY = 0.7  # opacity where attention is highest


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
        "emotion score). Written beside its target and moved into place when the run ends; an existing file is "
        "replaced only when at least one image was predicted. Default: JSON lines on stdout.",
    )
    parser.add_argument(
        "--cards",
        metavar="DIR",
        help=f"Also write one PNG card per image into DIR ({CARD_SIZE[0]}x{CARD_SIZE[1]} pixels): the image, the "
        "emotion with a bar chart of all emotion scores, and the explanation. Named after the image file.",
    )
    parser.add_argument(
        "--attention_maps",
        action="store_true",
        help="Also ask the model where its explanation looked: cards get a semi-transparent heat map over the image "
        "(the explanation's cross-attention over the image patches), JSON Lines rows an 'attention_map' field (rows "
        "x columns of the patch grid, values in [0, 1]). Needs --cards or JSON Lines output.",
    )
    parser.add_argument("--batch_size", type=int, default=8, help="Images encoded and generated together (default: 8).")
    parser.add_argument("--device", help="cuda, cuda:1, mps or cpu. Default: the device accelerate picks (CUDA, then MPS, then CPU).")
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
    parser.add_argument(
        "--max_image_pixels",
        type=int,
        help="Largest image (width x height pixels) opened; larger files are skipped as possible decompression "
        "bombs (default: Pillow's limit, twice Image.MAX_IMAGE_PIXELS: 178,956,970). Raise it for huge scans you trust.",
    )
    generation = parser.add_argument_group("generation (defaults: the model's generation config, greedy)")
    generation.add_argument("--max_new_tokens", type=int, help="Most tokens generated for the explanation, at least 1 (model default: 25).")
    generation.add_argument("--num_beams", type=int, help="Beam width, at least 1 (1: greedy).")
    generation.add_argument("--do_sample", action="store_true", help="Sample the explanation instead of greedy/beam decoding.")
    generation.add_argument("--temperature", type=float, help="Sampling temperature, above 0 (needs --do_sample).")
    generation.add_argument("--top_p", type=float, help="Nucleus sampling mass, in (0, 1] (needs --do_sample).")
    generation.add_argument("--top_k", type=int, help="Top-k sampling cut-off, 0 or more; 0 switches it off (needs --do_sample).")
    generation.add_argument("--seed", type=int, default=42, help="Random seed, for reproducible sampling (default: 42).")
    parser.add_argument(
        "--torch_num_threads",
        type=int,
        help="CPU threads for torch (default: torch's choice). Small models run as fast on 1 and are then not slowed "
        "down by other jobs on a shared machine.",
    )
    parser.add_argument("--no_progress", action="store_true", help="Hide the progress bar.")
    return parser


def parse_args(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error(f"--batch_size must be at least 1, got {args.batch_size}.")
    if args.output and output_format(args.output) is None:
        parser.error(f"--output {display_path(args.output)}: use a file name ending in .jsonl or .csv.")
    if args.max_image_pixels is not None and args.max_image_pixels < 1:
        parser.error(f"--max_image_pixels must be at least 1, got {args.max_image_pixels}.")
    if args.attention_maps and not args.cards and output_format(args.output or "-.jsonl") == "csv":
        parser.error("--attention_maps draws on cards or adds a field to JSON Lines rows: add --cards DIR or write .jsonl.")
    for problem in generation_problems(args):
        parser.error(problem)
    return args


def generation_problems(args):
    """Generation flags no model can use, found before any image is read (not one failure per image)."""
    problems = []
    sampling = {"--temperature": args.temperature, "--top_p": args.top_p, "--top_k": args.top_k}
    given = [flag for flag, value in sampling.items() if value is not None]
    if given and not args.do_sample:
        problems.append(f"{', '.join(given)} only apply when sampling: add --do_sample (or drop them for greedy/beam decoding).")
    return generation_value_problems(args.max_new_tokens, args.num_beams, args.temperature, args.top_p, args.top_k) + problems


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
class ImageTooLarge(ValueError):
    """An image above the decompression-bomb limit (`--max_image_pixels`)."""


def image_loader():
    """The processor's image loader, the one training and the pipeline use."""
    try:
        from processing_sevlm import load_image
    except ImportError:  # processing_sevlm.py before load_image
        from processing_sevlm import to_rgb_image as load_image
    return load_image


def read_image(path):
    """The image at `path` as an RGB PIL image (`image_loader`); an error naming the file when it cannot be used."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # below the limit: fine, read it
            return image_loader()(str(path))
    except Exception as error:
        bomb = error if isinstance(error, Image.DecompressionBombError) else error.__cause__
        if isinstance(bomb, Image.DecompressionBombError):
            raise ImageTooLarge(
                f"{display_path(path)} is larger than the decompression-bomb limit ({bomb}); if you trust the file, "
                "pass --max_image_pixels with at least its width x height."
            ) from error
        raise


# -------------------------------------------------------------------------------------------------- model
def load_pipeline(model_name_or_path, device=None):
    """The model folder's `art-emotion` pipeline. Folders saved before the pipeline existed get this repository's."""
    from transformers import AutoConfig, pipeline

    if model_name_or_path == DEMO_MODEL and not os.path.exists(DEMO_MODEL):
        raise FileNotFoundError(f"No model at {DEMO_MODEL}. Train the demo model first (python train_sevlm.py) or pass --model_name_or_path.")
    device = pick_device(device)
    check_model_folder(model_name_or_path)
    config = AutoConfig.from_pretrained(model_name_or_path, trust_remote_code=True)
    if TASK in (getattr(config, "custom_pipelines", None) or {}):
        return pipeline(TASK, model=model_name_or_path, trust_remote_code=True, device=device)
    from transformers import AutoModel, AutoProcessor

    from pipeline_sevlm import SevlmArtEmotionPipeline

    print(f"{display_path(model_name_or_path)} has no {TASK} pipeline in its config; using pipeline_sevlm.py from this repository.", file=sys.stderr)
    model = AutoModel.from_pretrained(model_name_or_path, trust_remote_code=True)
    processor = AutoProcessor.from_pretrained(model_name_or_path, trust_remote_code=True)
    return SevlmArtEmotionPipeline(model=model, processor=processor, device=device)


def supports_attention_maps(pipe):
    """Whether the pipeline takes `return_attention_map=True` (pipeline files of older model folders do not)."""
    try:
        pipe._sanitize_parameters(return_attention_map=True)
    except TypeError:
        return False
    return True


# ---------------------------------------------------------------------------------------------- predicting
def predict(
    pipe, paths, batch_size=8, emotion=None, generation=None, cards_dir=None, report=None, progress=True, attention_maps=False
):
    """Yield one row per readable image: `{"file", "emotion", "score", "scores", "explanation"[, "card"]
    [, "attention_map"]}`; `file` and `card` are printable text (`display_path`), `card` is None when that card
    failed.

    Unreadable files (and images the model fails on) go to `report(path, message)` and are skipped. Each file is
    read once; the same image feeds the model and the card. `attention_maps=True` asks the pipeline for
    `attention_map` (drawn on the cards).
    """
    from tqdm.auto import tqdm

    report = report or (lambda path, message: None)
    generation = dict(generation or {})
    if emotion is not None:
        generation["emotion"] = emotion
    if attention_maps:
        generation["return_attention_map"] = True
    card_names = CardNames(cards_dir) if cards_dir else None
    bar = tqdm(total=len(paths), unit="image", desc="Predicting", disable=not progress, file=sys.stderr)
    try:
        for start in range(0, len(paths), batch_size):
            batch = []
            for path in paths[start : start + batch_size]:
                try:
                    batch.append((path, read_image(path)))
                except Exception as error:  # corrupt, truncated, too large (a decompression bomb), ...
                    reason = error if isinstance(error, ImageTooLarge) else error.__cause__ or error
                    report(path, f"cannot be read ({reason})")
            for path, image, result in _run_batch(pipe, batch, generation, report):
                row = {"file": display_path(path), **result}
                if card_names is not None:
                    card = card_names.next(path)
                    row["card"] = None
                    try:
                        make_card(image, result, card, title=display_path(Path(path).name), asked=emotion is not None)
                        row["card"] = display_path(card)
                    except Exception as error:
                        message = f"card for {display_path(path)} not written ({error}); the prediction is kept"
                        tqdm.write(display_path(message), file=sys.stderr)
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
    """Card file names from image names (`painting.jpg` -> `painting.png`), numbered when two images share a stem.

    Names are the printable form of the image's (`display_path`), so that the `card` written in a row is the
    card's real file name, also for image names that are not valid UTF-8.
    """

    def __init__(self, folder):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.used = set()

    def next(self, path):
        stem = display_path(Path(path).stem) or "image"
        name, number = f"{stem}.png", 2
        while name in self.used:
            name, number = f"{stem}-{number}.png", number + 1
        self.used.add(name)
        return self.folder / name


# --------------------------------------------------------------------------------------------------- cards
def make_card(image, result, path, title=None, asked=False):
    """Write a PNG card (`CARD_SIZE` pixels, see `draw_card`) to `path`; returns the path."""
    from matplotlib import rc_context

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with rc_context(PLAIN_TEXT), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # glyphs missing from the font (e.g. CJK file names) are drawn as boxes
        figure = draw_card(image, result, title=title, asked=asked)
        figure.savefig(path, dpi=CARD_DPI, facecolor="white")
    return Path(path)


# Every text on a card is plain text: `$...$` in a file name, class name or explanation is not matplotlib math.
PLAIN_TEXT = {"text.parse_math": False, "text.usetex": False}


def draw_card(image, result, title=None, asked=False):
    """A card as a matplotlib `Figure`: the image on the left (with the attention heat map when `result` holds an
    `attention_map`); on the right the emotion and its score, a bar chart of every emotion score (the shown emotion
    highlighted; 2 to about 20 classes fit) and the explanation, wrapped.

    `result` is a pipeline result; `asked=True` labels the emotion as requested rather than predicted.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    image = _as_rgb(image)
    emotions = list(result["scores"])
    shown = result["emotion"]
    figure = Figure(figsize=(CARD_SIZE[0] / CARD_DPI, CARD_SIZE[1] / CARD_DPI), dpi=CARD_DPI, facecolor="white")
    FigureCanvasAgg(figure)

    # Layout in figure fractions: image on the left, header / scores / explanation on the right.
    painting = figure.add_axes((0.02, 0.07, 0.44, 0.79))
    painting.imshow(image, interpolation="lanczos" if max(image.size) > 256 else "bicubic")
    painting.set_axis_off()
    if result.get("attention_map") is not None:
        draw_heat_map(painting, result["attention_map"], image.size)
        _text(figure, 0.24, 0.035, "heat map: where the explanation looked", fontsize=9, color="#777777", ha="center")
    if title:
        _text(figure, 0.02, 0.93, _shorten(title, 70), fontsize=10, color="#777777", va="center")

    label = "asked emotion" if asked else "predicted emotion"
    name = _shorten(shown, 32)
    _text(figure, 0.50, 0.93, name, fontsize=min(30, 420 / max(len(name), 1)), fontweight="bold", color=_color(shown, emotions), va="center")
    _text(figure, 0.98, 0.93, f"{label}\nscore {result['score']:.0%}", fontsize=12, color="#555555", ha="right", va="center")
    _draw_scores(figure, emotions, [result["scores"][name] for name in emotions], shown)

    explanation = result["explanation"] or "(no explanation generated)"
    wrapped = "\n".join(textwrap.wrap(f"\u201c{explanation}\u201d", width=54, max_lines=4, placeholder=" \u2026"))
    _text(figure, 0.50, 0.27, f"because\u2026\n{wrapped}", fontsize=14, va="top", ha="left", linespacing=1.4)
    return figure


def _draw_scores(figure, emotions, values, shown):
    """Horizontal bars of every class's score; font and bar size shrink with the number of classes so that
    labels never overlap (2 to about 20 classes)."""
    from matplotlib.transforms import blended_transform_factory

    bars = figure.add_axes((0.66, 0.32, 0.28, 0.54))
    count = len(emotions)
    row_points = 0.54 * CARD_SIZE[1] / CARD_DPI * 72 / max(count, 1)  # height of one row, in points
    fontsize = max(6.0, min(11.0, 0.6 * row_points))
    label_chars = int(0.15 * CARD_SIZE[0] / CARD_DPI * 72 / (0.6 * fontsize))  # labels sit in the 0.16 left of the bars
    positions = list(range(count))
    colors = [_color(name, emotions) for name in emotions]
    drawn = bars.barh(positions, values, color=colors, height=0.7)
    names_at = blended_transform_factory(bars.transAxes, bars.transData)
    for patch, position, name, value in zip(drawn, positions, emotions, values):
        weight = "bold" if name == shown else "normal"
        patch.set_alpha(1.0 if name == shown else 0.45)
        _text(bars, min(value, 1.0) + 0.015, position, f"{value:.0%}", va="center", fontsize=fontsize, fontweight=weight)
        _text(bars, -0.03, position, _shorten(name, label_chars), va="center", ha="right", fontsize=fontsize, fontweight=weight, transform=names_at)
    bars.set_ylim(count - 0.5, -0.5)  # first class on top
    bars.set_xlim(0, 1.15)
    bars.set_xticks([])
    bars.set_yticks([])
    for side in ("top", "right", "bottom"):
        bars.spines[side].set_visible(False)
    return bars


def draw_heat_map(axes, attention_map, image_size):
    """Lay `attention_map` (rows x columns over the image patch grid, values in [0, 1]) over the image shown in
    `axes` (`image_size` = (width, height) in pixels): coloured and more opaque where attention is high, so that
    the image stays visible where the explanation did not look. The processor resizes the whole image to a
    square (no crop), so the grid spans the whole image."""
    import numpy as np
    from matplotlib import colormaps
    from PIL import Image

    values = np.asarray(attention_map, dtype=np.float32)
    if values.ndim != 2 or values.size == 0 or not np.isfinite(values).all():
        raise ValueError(f"attention_map must be a 2-D grid of finite numbers, got shape {values.shape}.")
    values = values.clip(0, 1)
    peak = float(values.max())
    if peak > 0:
        values = values / peak  # the strongest patch at full strength, whatever the spread
    width, height = image_size
    scale = min(1.0, 512 / max(width, height))  # enough for the card; smooth between patch centres
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    smooth = np.asarray(Image.fromarray(values, mode="F").resize(size, Image.BILINEAR)).clip(0, 1)
    rgba = colormaps[HEAT_MAP](smooth)
    rgba[..., 3] = HEAT_MAP_OPACITY * smooth
    axes.imshow(rgba, extent=(-0.5, width - 0.5, height - 0.5, -0.5), interpolation="bilinear")
    axes.set_xlim(-0.5, width - 0.5)
    axes.set_ylim(height - 0.5, -0.5)


def _as_rgb(image):
    """An RGB PIL image from an already-read image (as is) or anything the image loader takes."""
    from PIL import Image

    if isinstance(image, Image.Image) and image.mode == "RGB":
        return image
    return image_loader()(image)


def _text(where, x, y, text, **kwargs):
    """`where.text` as plain text (never parsed as `$math$`)."""
    return where.text(x, y, text, parse_math=False, **kwargs)


def _color(name, emotions=()):
    """ArtEmis's group colour for its class names, else a palette colour by the class's index."""
    if name in POSITIVE:
        return COLORS["positive"]
    if name in NEGATIVE:
        return COLORS["negative"]
    if name in OTHER:
        return COLORS["other"]
    emotions = list(emotions)
    index = emotions.index(name) if name in emotions else 0
    return PALETTE[index % len(PALETTE)]


def _shorten(text, width):
    return text if len(text) <= width else text[: max(width - 1, 1)] + "\u2026"


# --------------------------------------------------------------------------------------------------- output
class RowWriter:
    """Streams rows as JSON lines (file or stdout) or CSV, flushing each row.

    A file is written beside its target (`.NAME.*.partial`) and moved into place by `close()`: an existing file is
    replaced only when the new one holds at least one row, also after an interruption (the rows written so far
    are kept); with no row the old file stays untouched. CSV columns are fixed before the first row: `file,
    emotion, score, explanation`, `card` when `cards` is set (empty when that card failed), one `score_<emotion>`
    column per class. Rows are written as given (`file` and `card` already printable, see `predict`).
    """

    def __init__(self, path, emotions, cards=False):
        self.path = Path(path) if path else None
        self.format = output_format(path) if path else "jsonl"
        self.columns = ["file", "emotion", "score", "explanation"] + (["card"] if cards else [])
        self.columns += [score_column(name) for name in emotions]
        self.rows = 0
        self.temporary = None
        if self.path is None:
            self.handle = sys.stdout
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            descriptor, temporary = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".partial", dir=self.path.parent)
            self.temporary = Path(temporary)
            self.handle = os.fdopen(descriptor, "w", encoding="utf-8", newline="")
        self.csv = None
        if self.format == "csv":
            self.csv = csv.DictWriter(self.handle, fieldnames=self.columns)
            self.csv.writeheader()

    def write(self, row):
        if self.csv is None:
            self.handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        else:
            flat = {key: value for key, value in row.items() if key in self.columns}
            flat.update({score_column(name): value for name, value in row["scores"].items()})
            self.csv.writerow(flat)
        self.handle.flush()
        self.rows += 1

    def close(self):
        """Move the file into place if it holds a row, else drop it. Returns "written", "replaced" (an existing file
        was replaced), "unchanged" (no row; an existing file was left as it was), "not written" (no row, no old
        file) or None for stdout."""
        if self.path is None:
            self.handle.flush()
            return None
        self.handle.close()
        existed = self.path.exists()
        if not self.rows:
            self.temporary.unlink(missing_ok=True)
            return "unchanged" if existed else "not written"
        _give_mode(self.temporary, self.path if existed else None)
        os.replace(self.temporary, self.path)
        return "replaced" if existed else "written"


def _give_mode(path, like=None):
    """Permissions of `like` (the file being replaced) or the umask's default, not mkstemp's owner-only 0600."""
    if like is not None:
        mode = os.stat(like).st_mode & 0o777
    else:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    os.chmod(path, mode)


def score_column(emotion):
    """CSV column of an emotion's score: `score_something_else`."""
    return "score_" + emotion.replace(" ", "_")


# ----------------------------------------------------------------------------------------------------- main
def main(argv=None):
    args = parse_args(argv)
    paths, problems = find_images(args.inputs, [ext.strip() for ext in args.extensions.split(",") if ext.strip()])
    for item, reason in problems:
        print(f"skipped {display_path(item)}: {reason}", file=sys.stderr)
    if not paths:
        print("No images to predict: pass image files, folders or glob patterns.", file=sys.stderr)
        return 1
    if args.max_image_pixels is not None:
        from PIL import Image

        Image.MAX_IMAGE_PIXELS = args.max_image_pixels / 2  # Pillow refuses images above twice this value
    if args.torch_num_threads is not None:
        if args.torch_num_threads < 1:
            print(f"--torch_num_threads must be at least 1, got {args.torch_num_threads}.", file=sys.stderr)
            return 2
        import torch

        torch.set_num_threads(args.torch_num_threads)

    from transformers import set_seed

    set_seed(args.seed)
    try:
        device = pick_device(args.device)
    except (RuntimeError, ValueError) as error:  # an unknown device name, or CUDA asked for where there is none
        print(f"--device {args.device}: {error}", file=sys.stderr)
        return 1
    try:
        pipe = load_pipeline(args.model_name_or_path, device)
    except (OSError, ValueError) as error:
        print(f"Cannot load the model {display_path(args.model_name_or_path)}: {display_path(str(error))}", file=sys.stderr)
        return 1
    if args.emotion is not None and args.emotion.strip().lower() not in [name.lower() for name in pipe.emotions]:
        print(f"--emotion {args.emotion!r} is not one of the model's emotions: {', '.join(pipe.emotions)}.", file=sys.stderr)
        return 1
    if args.attention_maps and not supports_attention_maps(pipe):
        print(
            f"--attention_maps: the pipeline of {display_path(args.model_name_or_path)} cannot return attention maps. "
            "It was saved by an older version of this project: save the model again with the current one (train, or "
            "load it and call save_pretrained), which writes matching code files.",
            file=sys.stderr,
        )
        return 1

    from tqdm.auto import tqdm

    failed = []

    def report(path, message):
        failed.append(display_path(path))
        tqdm.write(f"skipped {display_path(path)}: {display_path(message)}", file=sys.stderr)

    writer = RowWriter(args.output, pipe.emotions, cards=bool(args.cards))
    interrupted = False
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
            attention_maps=args.attention_maps,
        ):
            writer.write(row)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        outcome = writer.close()
    done = writer.rows
    print(summary(args, done, len(paths), outcome, interrupted), file=sys.stderr)
    if failed:
        print(f"{len(failed)} file(s) could not be used: {', '.join(failed)}", file=sys.stderr)
    if interrupted:
        return 130
    return 0 if done else 1


def summary(args, done, total, outcome, interrupted):
    """The last line on stderr: how many images, where they went, and what happened to an existing file."""
    output = display_path(args.output) if args.output else None
    where = {
        "written": f" to {output}",
        "replaced": f" to {output} (replaced the existing file)",
        "unchanged": f"; {output} was left unchanged",
        "not written": f"; {output} was not written",
    }.get(outcome, "")
    cards = f", cards in {display_path(args.cards)}" if args.cards and done else ""
    head = f"Interrupted after {done} of {total} images" if interrupted else f"Predicted {done} of {total} images"
    return f"{head}{where}{cards}."


if __name__ == "__main__":
    sys.exit(main())
