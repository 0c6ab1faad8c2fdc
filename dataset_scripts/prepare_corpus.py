"""Prepare a corpus of any emotion taxonomy for SEVLM: `sevlm-prepare` (the work is `sevlm.data.corpus.prepare_corpus`)."""

import argparse
import sys

from sevlm.cli.arguments import run_command
from sevlm.data.settings import JPEG_QUALITY, MAX_IMAGE_SIDE, REPORT_NAME, SPLIT_SEED
from sevlm.names import parse_emotion_list


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="sevlm-prepare",
        description=(
            "Build a SEVLM corpus of any emotion taxonomy from a CSV / JSON Lines file with one (image, emotion, "
            "explanation) annotation per row, or from an image folder with metadata.csv / metadata.jsonl "
            "(Hugging Face imagefolder layout). One row per item (its annotations grouped), split 85/5/10 by item, "
            f"saved with save_to_disk; every dropped row is counted by reason in <output_dir>/{REPORT_NAME}."
        ),
    )
    parser.add_argument("--input", required=True,
                        help="The annotation file (.csv, or .jsonl: one JSON object per line), or an image folder "
                             "holding metadata.csv or metadata.jsonl.")
    parser.add_argument("--output_dir", required=True, help="Where to save the DatasetDict and the report.")
    parser.add_argument("--image_dir", default=None,
                        help="Where relative image paths point (default: the folder of the annotation file, or the "
                             "image folder itself). Names are matched whatever their Unicode form (NFC / NFD).")
    parser.add_argument("--image_column", default=None,
                        help="Column with each annotation's image path (default: `image`, or `file_name` for an "
                             "image folder).")
    parser.add_argument("--emotion_column", default="emotion", help="Column with the emotion label (default: %(default)s).")
    parser.add_argument("--explanation_column", default="explanation",
                        help="Column with the explanation text (default: %(default)s).")
    parser.add_argument("--id_column", default=None,
                        help="Column that groups annotations into items (default: the image path: one item per "
                             "image).")
    parser.add_argument("--emotions", default=None,
                        help="The classes, comma-separated, in class order (e.g. \"delighted,satisfied,mixed "
                             "feelings\"); labels are matched ignoring case, '_' vs ' ' and Unicode form. Without it, "
                             "the classes are inferred from the data in order of first appearance (printed, with a "
                             "warning); other labels are dropped as unknown_emotion when it is given.")
    parser.add_argument("--split_seed", type=int, default=SPLIT_SEED,
                        help="Seed of the split by item: sha256('<seed>:<item id>') decides it, so an item keeps its "
                             "split in every run (default: %(default)s).")
    parser.add_argument("--max_image_side", type=int, default=MAX_IMAGE_SIDE,
                        help="Shrink images so that the long side is at most this many pixels, aspect kept; smaller "
                             f"ones keep their size (default: %(default)s). Stored as JPEG, quality {JPEG_QUALITY}.")
    parser.add_argument("--num_proc", type=int, default=1,
                        help="Processes that decode and resize images in parallel (default: %(default)s).")
    parser.add_argument("--skip_missing_images", action="store_true",
                        help="Drop items whose image is missing or unreadable (counted and listed in the report) "
                             "instead of stopping with an error.")
    parser.add_argument("--overwrite", action="store_true",
                        help="Replace an earlier result in --output_dir; it is removed only once the new one is "
                             "complete (a failed run leaves it untouched).")
    parser.add_argument("--parquet", action="store_true",
                        help="Also write <output_dir>/hub/data/{split}-0000i-of-0000N.parquet with the image bytes "
                             "embedded, plus a dataset card, ready for `huggingface-cli upload --repo-type dataset`.")
    return parser.parse_args(argv)


def prepare(args):
    from sevlm.data.corpus import prepare_corpus

    emotions = parse_emotion_list(args.emotions) if args.emotions is not None else None
    prepare_corpus(
        input=args.input,
        output_dir=args.output_dir,
        image_dir=args.image_dir,
        image_column=args.image_column,
        emotion_column=args.emotion_column,
        explanation_column=args.explanation_column,
        id_column=args.id_column,
        emotions=emotions,
        split_seed=args.split_seed,
        max_image_side=args.max_image_side,
        num_proc=args.num_proc,
        skip_missing_images=args.skip_missing_images,
        overwrite=args.overwrite,
        parquet=args.parquet,
    )


def main(argv=None):
    return run_command(prepare, parse_args(argv), prog="sevlm-prepare")


if __name__ == "__main__":
    sys.exit(main())
