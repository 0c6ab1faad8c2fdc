"""Prepare ArtEmis v1.0 / v2.0 for SEVLM with the paper's protocol: `sevlm-prepare-artemis` (the work is
`sevlm.data.artemis.prepare_artemis`)."""

import sys
from dataclasses import dataclass, field

from sevlm.cli.arguments import HelpFormatter, parse_flags, run_command
from sevlm.data.settings import (
    JPEG_QUALITY,
    MAX_IMAGE_SIDE,
    MAX_REPETITION,
    REPORT_NAME,
    SPLIT_METHODS,
    SPLIT_SEED,
    V2_TRAIN_SETS,
)

DESCRIPTION = (
    "Build the ArtEmis corpus for SEVLM (one row per painting: image, emotions, explanations, emotion_histogram, "
    "source), split by painting, saved with save_to_disk. Every dropped annotation is counted by reason, and every "
    f"warning given, in <output_dir>/{REPORT_NAME}."
)


@dataclass
class PrepareArtemisArguments:
    artemis_csv: str = field(metadata={
        "help": "ArtEmis v1.0 raw annotations: artemis_dataset_release_v0.csv (columns art_style, painting, emotion, "
                "utterance, repetition). With --artemis_preprocessed_csv it supplies the emotion histograms (from all "
                "raw rows, as SEVLM)."})
    wikiart_dir: str = field(metadata={
        "help": "WikiArt image root: images at <wikiart_dir>/<art_style>/<painting>.jpg. File names are matched "
                "whatever their Unicode form (NFC or NFD) and Info-ZIP #Uxxxx escapes."})
    output_dir: str = field(metadata={
        "help": "Where to save the DatasetDict (load it with datasets.load_from_disk) and the report. Other files in "
                "the folder are left alone."})
    artemis_preprocessed_csv: str | None = field(default=None, metadata={
        "help": "ArtEmis's artemis_preprocessed.csv (from its preprocess_artemis_data.py --preprocess-for-deep-nets "
                "True): the paper's data. Each annotation's split and its spell-checked text (utterance_spelled) come "
                "from it; rows of split 'rest' are dropped. A v2.0 one (with a `version` column, old/new) gives the "
                "source of each row."})
    contrastive_csv: str | None = field(default=None, metadata={
        "help": "ArtEmis v2.0 Contrastive.csv: its annotations are added with source 'contrastive' (the v2.0 corpus; "
                "see --v2_train_set)."})
    split: str = field(default="official", metadata={
        "choices": SPLIT_METHODS,
        "help": "official: ArtEmis's own split (paintings with repetition >= 41 set aside, then scikit-learn's "
                "train_test_split with random_state 2021 over the sorted art_style+painting ids), reproduced exactly; "
                "paintings only in Contrastive.csv get the hash split. hash: sha256('<split_seed>:<painting_id>') cut "
                "at 0.85/0.90. Ignored with --artemis_preprocessed_csv (its own split column is used)."})
    v2_train_set: str = field(default="full_combined", metadata={
        "choices": V2_TRAIN_SETS,
        "help": "With --contrastive_csv: full_combined keeps every v1.0 and contrastive row; combined is ArtEmis "
                "v2.0's 'combined' training set (create_parts.py): all contrastive rows plus a same-size sample of "
                "v1.0 rows (random_state 42, drawn over the v1.0 rows of all splits); only the train split is "
                "thinned."})
    max_repetition: int = field(default=MAX_REPETITION, metadata={
        "help": "With --split hash: drop all annotations of paintings whose `repetition` exceeds this (as the "
                "official procedure)."})
    max_image_side: int = field(default=MAX_IMAGE_SIDE, metadata={
        "help": "Shrink images so that the long side is at most this many pixels, aspect kept; smaller images keep "
                f"their size. Stored as JPEG, quality {JPEG_QUALITY}."})
    contrastive_only: bool = field(default=False, metadata={
        "help": "Keep only paintings with at least 2 distinct emotions (the contrastive training set)."})
    skip_missing_images: bool = field(default=False, metadata={
        "help": "Drop paintings whose image is missing or unreadable instead of stopping with an error. They are "
                "counted in the report, and the test paintings dropped are listed: the test set then differs from "
                "the paper's."})
    skip_malformed_rows: bool = field(default=False, metadata={
        "help": "Leave out CSV rows whose number of fields differs from the header's, counting each in the report "
                "(malformed_row), instead of stopping with an error that names the file and line."})
    split_seed: int = field(default=SPLIT_SEED, metadata={
        "help": "Seed of the hash split (--split hash, and paintings only in Contrastive.csv)."})
    parquet: bool = field(default=False, metadata={
        "help": "Also write <output_dir>/hub/data/{split}-0000i-of-0000N.parquet with the image bytes embedded, plus a "
                "dataset card, ready for `huggingface-cli upload --repo-type dataset`."})
    num_proc: int = field(default=1, metadata={"help": "Processes that decode and resize images in parallel."})
    overwrite: bool = field(default=False, metadata={
        "help": "Replace an earlier corpus in --output_dir: only the files it wrote, once the new ones are complete (a "
                "failed run leaves it untouched)."})


def build_parser():
    from transformers import HfArgumentParser

    return HfArgumentParser(PrepareArtemisArguments, formatter_class=HelpFormatter, prog="sevlm-prepare-artemis", description=DESCRIPTION)


def parse_args(argv=None):
    (args,) = parse_flags(build_parser(), argv)
    return args


def prepare(args):
    from sevlm.data.artemis import prepare_artemis

    prepare_artemis(
        artemis_csv=args.artemis_csv,
        wikiart_dir=args.wikiart_dir,
        output_dir=args.output_dir,
        contrastive_csv=args.contrastive_csv,
        artemis_preprocessed_csv=args.artemis_preprocessed_csv,
        split=args.split,
        v2_train_set=args.v2_train_set,
        max_repetition=args.max_repetition,
        max_image_side=args.max_image_side,
        contrastive_only=args.contrastive_only,
        skip_missing_images=args.skip_missing_images,
        skip_malformed_rows=args.skip_malformed_rows,
        split_seed=args.split_seed,
        parquet=args.parquet,
        num_proc=args.num_proc,
        overwrite=args.overwrite,
    )


def main(argv=None):
    return run_command(prepare, parse_args(argv), prog="sevlm-prepare-artemis")


if __name__ == "__main__":
    sys.exit(main())
