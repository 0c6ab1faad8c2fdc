"""Name the emotion an image evokes and explain it, for image files, folders or glob patterns.

    sevlm-predict painting.jpg                                     # JSON lines on stdout
    sevlm-predict paintings/ "more/**/*.png" --output predictions.csv --cards cards/
    sevlm-predict paintings/ --model_name_or_path outputs/sevlm-artemis --emotion awe --output awe.jsonl

Each image gives one row: file, emotion, score, the score of every emotion and the explanation (the semantics
are those of the `art-emotion` pipeline, see pipeline_sevlm.py). Files that cannot be read are reported on stderr
and skipped. Nothing that exists is replaced without --overwrite: an --output file, or a card of an earlier run;
a file in the --cards folder that this command did not write is never replaced. The exit status is 0 when at least
one image was predicted, 1 otherwise (130 when interrupted; CTRL-C keeps the rows written so far).
"""

import sys
from dataclasses import dataclass, field

from sevlm import DEMO_MODEL
from sevlm.cli.arguments import HelpFormatter, parse_flags
from sevlm.generation import CompileArguments, GenerationArguments, generation_kwargs, generation_problems
from sevlm.images import IMAGE_EXTENSIONS, find_images
from sevlm.io import display_path, listed

CARD_SIZE = (1200, 600)  # pixels, drawn by sevlm.render
CARD_OWNER = "card folder"


@dataclass
class PredictArguments(CompileArguments, GenerationArguments):
    model_name_or_path: str = field(
        default=DEMO_MODEL,
        metadata={"aliases": ["--model"], "help": "Saved SEVLM folder or Hub id, loaded with its own code (trust_remote_code)."},
    )
    output: str | None = field(
        default=None,
        metadata={
            "help": "Where the predictions go: a .jsonl file (one JSON object per image) or a .csv file (one column per "
            "emotion score). Written beside its target and moved into place when the run ends (and only when at "
            "least one image was predicted). Default: JSON lines on stdout."
        },
    )
    cards: str | None = field(
        default=None,
        metadata={
            "help": f"Also write one PNG card per image into this folder ({CARD_SIZE[0]}x{CARD_SIZE[1]} pixels): the "
            "image, the emotion with a bar chart of all emotion scores, and the explanation, named after the image "
            "(painting.jpg -> painting.png). A name taken by a file this command did not write stops the run before "
            "any work."
        },
    )
    overwrite: bool = field(
        default=False,
        metadata={"help": "Replace an existing --output file and the cards an earlier run wrote into --cards."},
    )
    attention_maps: bool = field(
        default=False,
        metadata={
            "help": "Also ask the model where its explanation looked: cards get a semi-transparent heat map over the "
            "image (the explanation's cross-attention over the image patches), JSON Lines rows an 'attention_map' "
            "field (rows x columns of the patch grid, values in [0, 1]). Needs --cards or JSON Lines output."
        },
    )
    emotion: str | None = field(
        default=None,
        metadata={
            "help": "Explain this emotion (one of the model's classes, e.g. awe) for every image instead of the "
            "predicted one; the score is then the model's own probability of it."
        },
    )
    batch_size: int = field(default=8, metadata={"help": "Images encoded and generated together."})
    device: str | None = field(
        default=None, metadata={"help": "cuda, cuda:1, mps or cpu. Default: the device accelerate picks (CUDA, then MPS, then CPU)."}
    )
    extensions: str = field(
        default=",".join(IMAGE_EXTENSIONS),
        metadata={"help": "Comma-separated file extensions picked up in folders and globs. Files named directly are always tried."},
    )
    max_image_pixels: int | None = field(
        default=None,
        metadata={
            "help": "Largest image (width x height pixels) opened; larger files are skipped as possible decompression "
            "bombs (default: Pillow's limit, twice Image.MAX_IMAGE_PIXELS: 178,956,970). Raise it for huge scans you "
            "trust."
        },
    )
    seed: int = field(default=42, metadata={"help": "Random seed, for reproducible sampling."})
    torch_num_threads: int | None = field(
        default=None,
        metadata={
            "help": "CPU threads for torch (default: torch's choice). Small models run as fast on 1 and are then not "
            "slowed down by other jobs on a shared machine."
        },
    )
    no_progress: bool = field(default=False, metadata={"help": "Hide the progress bar."})


def build_parser():
    from transformers import HfArgumentParser

    parser = HfArgumentParser(PredictArguments, formatter_class=HelpFormatter, prog="sevlm-predict", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "inputs",
        nargs="+",
        help="Image files, folders (searched recursively for image files) or glob patterns such as 'art/**/*.jpg' "
        "(quote them so that the shell does not expand them).",
    )
    return parser


def parse_args(argv=None):
    from sevlm.prediction import output_format

    parser = build_parser()
    args, positional = parse_flags(parser, argv)
    args.inputs = positional.inputs
    if args.batch_size < 1:
        parser.error(f"--batch_size must be at least 1, got {args.batch_size}.")
    if args.output and output_format(args.output) is None:
        parser.error(f"--output {display_path(args.output)}: use a file name ending in .jsonl or .csv.")
    if args.max_image_pixels is not None and args.max_image_pixels < 1:
        parser.error(f"--max_image_pixels must be at least 1, got {args.max_image_pixels}.")
    if args.torch_num_threads is not None and args.torch_num_threads < 1:
        parser.error(f"--torch_num_threads must be at least 1, got {args.torch_num_threads}.")
    if args.attention_maps and not args.cards and output_format(args.output or "-.jsonl") == "csv":
        parser.error("--attention_maps draws on cards or adds a field to JSON Lines rows: add --cards DIR or write .jsonl.")
    for problem in generation_problems(args):
        parser.error(problem)
    return args


def check_outputs(args, paths):
    """Everything this run will write, checked before the model is loaded: the --output file and every card name.
    Returns the card folder's `OutputFiles` (or None)."""
    from sevlm.io import OutputFiles, check_new_file
    from sevlm.prediction import card_names

    if args.output:
        check_new_file(args.output, args.overwrite, "--overwrite", "--output")
    if not args.cards:
        return None
    return OutputFiles(args.cards, CARD_OWNER, args.overwrite, "--overwrite", "--cards").check(card_names(paths).values())


def main(argv=None):
    args = parse_args(argv)
    not_images, outputs = [], []
    extensions = [ext.strip() for ext in args.extensions.split(",") if ext.strip()]
    paths, problems = find_images(args.inputs, extensions, not_images, outputs)
    for item, reason in problems:
        print(f"skipped {display_path(item)}: {reason}", file=sys.stderr)
    if not_images:  # files in the folders given that are not images by their extension (--extensions)
        names = [display_path(path) for path in not_images]
        print(f"{len(names)} skipped: not a supported image ({listed(names)}; see --extensions).", file=sys.stderr)
    if outputs:  # cards, galleries, reports, Spaces, indexes or models in the folders given: not pictures to predict
        names = [display_path(path) for path in outputs]
        print(f"{len(names)} SEVLM output(s) in the folders skipped, not images to predict: {listed(names)}.", file=sys.stderr)
    if not paths:
        print("No images to predict: pass image files, folders or glob patterns.", file=sys.stderr)
        return 1
    try:
        cards = check_outputs(args, paths)
    except OSError as error:
        print(f"sevlm-predict: error: {display_path(str(error))}", file=sys.stderr)
        return 1
    if args.max_image_pixels is not None:
        from PIL import Image

        Image.MAX_IMAGE_PIXELS = args.max_image_pixels / 2  # Pillow refuses images above twice this value
    if args.torch_num_threads is not None:
        import torch

        torch.set_num_threads(args.torch_num_threads)
    from tqdm.auto import tqdm
    from transformers import set_seed

    from sevlm.loading import pick_device
    from sevlm.names import match_emotion
    from sevlm.prediction import RowWriter, load_pipeline, predict

    set_seed(args.seed)
    try:
        device = pick_device(args.device)
    except ValueError as error:  # an unknown device name, or CUDA asked for where there is none
        print(error, file=sys.stderr)
        return 1
    try:
        pipe = load_pipeline(args.model_name_or_path, device, progress=not args.no_progress)
    except (OSError, ValueError) as error:
        print(f"Cannot load the model {display_path(args.model_name_or_path)}: {display_path(str(error))}", file=sys.stderr)
        return 1
    emotion = None if args.emotion is None else match_emotion(args.emotion, pipe.emotions)
    if args.emotion is not None and emotion is None:
        print(f"--emotion {args.emotion!r} is not one of the model's emotions: {', '.join(pipe.emotions)}.", file=sys.stderr)
        return 1

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
            emotion=emotion,
            generation={**generation_kwargs(args), **({"compile": True} if args.compile else {})},
            cards=cards,
            report=report,
            progress=not args.no_progress,
            attention_maps=args.attention_maps,
        ):
            writer.write(row)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        outcome = writer.close()
        if cards is not None:
            cards.close()
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
