"""Prepare a corpus of any emotion taxonomy for SEVLM: `sevlm-prepare` (the work is `sevlm.data.corpus.prepare_corpus`)."""

import sys
from dataclasses import dataclass, field

from sevlm.cli.arguments import HelpFormatter, parse_flags, run_command
from sevlm.data.settings import (
    JPEG_QUALITY,
    MAX_IMAGE_SIDE,
    MAX_READABLE_CLASSES,
    REPORT_NAME,
    SPLIT_SEED,
    TEST_SIZE,
    VALIDATION_SIZE,
)

DESCRIPTION = (
    "Build a SEVLM corpus of any emotion taxonomy from a CSV / JSON Lines file with one (image, emotion, explanation) "
    "annotation per row, or from an image folder with metadata.csv / metadata.jsonl (Hugging Face imagefolder "
    "layout). One row per item (its annotations grouped), split by a hash of the item's id, saved with save_to_disk; "
    f"every dropped row is counted by reason, and every warning given, in <output_dir>/{REPORT_NAME}."
)


@dataclass
class PrepareCorpusArguments:
    input: str = field(metadata={"help": "The annotation file (.csv, or .jsonl: one JSON object per line), or an image "
                                         "folder holding metadata.csv or metadata.jsonl."})
    output_dir: str = field(metadata={"help": "Where to save the corpus (the DatasetDict's folders, "
                                              "dataset_dict.json) and its report. Other files in the folder are left "
                                              "alone."})
    image_dir: str | None = field(default=None, metadata={
        "help": "Where relative image paths point; unset: the folder of the annotation file, or the image folder "
                "itself. Names are matched whatever their Unicode form (NFC / NFD)."})
    image_column: str | None = field(default=None, metadata={
        "help": "Column with each annotation's image path; unset: `image`, or `file_name` for an image folder."})
    emotion_column: str = field(default="emotion", metadata={"help": "Column with the emotion label."})
    explanation_column: str = field(default="explanation", metadata={"help": "Column with the explanation text."})
    id_column: str | None = field(default=None, metadata={
        "help": "Column that groups annotations into items; unset: the image path (one item per image)."})
    emotions: str | None = field(default=None, metadata={
        "help": "The classes, comma-separated, in class order (e.g. \"delighted,satisfied,mixed feelings\"; quote a "
                "name that holds a comma: '\"mixed, feelings\",joy'); labels are matched ignoring case, '_' vs ' ' "
                "and Unicode form. Without it, the classes are inferred from the data in order of first appearance "
                "(printed, with a warning); with it, other labels are dropped as unknown_emotion. Above "
                f"{MAX_READABLE_CLASSES} classes a warning says that names and cards become hard to read."})
    split_seed: int = field(default=SPLIT_SEED, metadata={
        "help": "Seed of the split by item: sha256('<seed>:<item id>') places each item, so an item keeps its split "
                "in every run."})
    validation_size: float = field(default=VALIDATION_SIZE, metadata={
        "help": "Items of the validation split: a fraction in (0, 1), or a number of items (1 or more). With "
                "fractions for both splits, each item's split depends only on its hash (85/5/10 by default), and a "
                "split left empty by a small corpus takes the next item, so that with 3 items or more every split "
                "has one; a number takes exactly that many items, by hash."})
    test_size: float = field(default=TEST_SIZE, metadata={
        "help": "Items of the test split: a fraction in (0, 1), or a number of items (1 or more); see "
                "--validation_size."})
    max_image_side: int = field(default=MAX_IMAGE_SIDE, metadata={
        "help": "Shrink images so that the long side is at most this many pixels, aspect kept; smaller ones keep their "
                f"size. Stored as JPEG, quality {JPEG_QUALITY}."})
    num_proc: int = field(default=1, metadata={"help": "Processes that decode and resize images in parallel."})
    skip_missing_images: bool = field(default=False, metadata={
        "help": "Drop items whose image is missing or unreadable (counted and listed in the report) instead of "
                "stopping with an error."})
    skip_malformed_rows: bool = field(default=False, metadata={
        "help": "Leave out rows whose number of fields differs from the header's (e.g. an unquoted comma in a text) "
                "and JSON Lines records that are not objects of text fields, counting each in the report "
                "(malformed_row), instead of stopping with an error that names the file and line."})
    overwrite: bool = field(default=False, metadata={
        "help": "Replace an earlier corpus in --output_dir: only the files it wrote, once the new ones are complete (a "
                "failed run leaves it untouched)."})
    parquet: bool = field(default=False, metadata={
        "help": "Also write <output_dir>/hub/data/{split}-0000i-of-0000N.parquet with the image bytes embedded, plus a "
                "dataset card, ready for `huggingface-cli upload --repo-type dataset`."})


def build_parser():
    from transformers import HfArgumentParser

    return HfArgumentParser(PrepareCorpusArguments, formatter_class=HelpFormatter, prog="sevlm-prepare", description=DESCRIPTION)


def parse_args(argv=None):
    (args,) = parse_flags(build_parser(), argv)
    return args


def prepare(args):
    from sevlm.data.corpus import prepare_corpus
    from sevlm.names import parse_emotion_list

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
        validation_size=args.validation_size,
        test_size=args.test_size,
        max_image_side=args.max_image_side,
        num_proc=args.num_proc,
        skip_missing_images=args.skip_missing_images,
        skip_malformed_rows=args.skip_malformed_rows,
        overwrite=args.overwrite,
        parquet=args.parquet,
    )


def main(argv=None):
    return run_command(prepare, parse_args(argv), prog="sevlm-prepare")


if __name__ == "__main__":
    sys.exit(main())
