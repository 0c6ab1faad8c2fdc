"""Name the emotion an image evokes and explain it, for image files, folders or glob patterns.

    sevlm-predict painting.jpg                                     # JSON lines on stdout
    sevlm-predict paintings/ "more/**/*.png" --output predictions.csv --cards cards/
    sevlm-predict paintings/ --model_name_or_path outputs/sevlm-artemis --emotion awe --output awe.jsonl

Each image gives one row: file, emotion, score, the score of every emotion and the explanation (the semantics
are those of the `art-emotion` pipeline, see pipeline_sevlm.py). Files that cannot be read are reported on stderr
and skipped. An existing --output file is replaced only once at least one row is written (CTRL-C keeps the rows
written so far). The exit status is 0 when at least one image was predicted, 1 otherwise (130 when interrupted).
"""

import argparse
import sys

from sevlm.generation import generation_kwargs, generation_problems
from sevlm.images import IMAGE_EXTENSIONS, find_images
from sevlm.io import display_path
from sevlm.loading import DEMO_MODEL
from sevlm.prediction import output_format

CARD_SIZE = (1200, 600)  # pixels; sevlm.render draws them
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


# ----------------------------------------------------------------------------------------------------- main
def main(argv=None):
    args = parse_args(argv)
    from sevlm.loading import pick_device
    from sevlm.prediction import RowWriter, load_pipeline, predict, supports_attention_maps

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
            generation=generation_kwargs(args),
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
