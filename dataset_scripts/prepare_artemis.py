"""Prepare ArtEmis v1.0 / v2.0 for SEVLM with the paper's protocol: `sevlm-prepare-artemis` (the work is
`sevlm.data.artemis.prepare_artemis`)."""

import argparse
import sys

from sevlm.cli.arguments import run_command
from sevlm.data.settings import (
    JPEG_QUALITY,
    MAX_IMAGE_SIDE,
    MAX_REPETITION,
    REPORT_NAME,
    SPLIT_METHODS,
    SPLIT_SEED,
    V2_TRAIN_SETS,
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="sevlm-prepare-artemis",
        description=(
            "Build the ArtEmis corpus for SEVLM (one row per painting: image, emotions, explanations, "
            "emotion_histogram, source), split by painting, saved with save_to_disk. Every dropped annotation is "
            f"counted by reason in <output_dir>/{REPORT_NAME}."
        ),
    )
    parser.add_argument("--artemis_csv", required=True,
                        help="ArtEmis v1.0 raw annotations: artemis_dataset_release_v0.csv (columns art_style, "
                             "painting, emotion, utterance, repetition). With --artemis_preprocessed_csv it supplies "
                             "the emotion histograms (from all raw rows, as SEVLM).")
    parser.add_argument("--artemis_preprocessed_csv", default=None,
                        help="ArtEmis's artemis_preprocessed.csv (from its preprocess_artemis_data.py "
                             "--preprocess-for-deep-nets True): the paper's data. Each annotation's split and its "
                             "spell-checked text (utterance_spelled) come from it; rows of split 'rest' are dropped. "
                             "A v2.0 one (with a `version` column, old/new) gives the source of each row.")
    parser.add_argument("--contrastive_csv", default=None,
                        help="ArtEmis v2.0 Contrastive.csv: its annotations are added with source 'contrastive' "
                             "(the v2.0 corpus; see --v2_train_set).")
    parser.add_argument("--wikiart_dir", required=True,
                        help="WikiArt image root: images at <wikiart_dir>/<art_style>/<painting>.jpg. File names are "
                             "matched whatever their Unicode form (NFC or NFD) and Info-ZIP #Uxxxx escapes.")
    parser.add_argument("--output_dir", required=True,
                        help="Where to save the DatasetDict (load it with datasets.load_from_disk) and the report.")
    parser.add_argument("--split", choices=SPLIT_METHODS, default="official",
                        help="official (default): ArtEmis's own split (paintings with repetition >= 41 set aside, "
                             "then scikit-learn's train_test_split with random_state 2021 over the sorted "
                             "art_style+painting ids), reproduced exactly; paintings only in Contrastive.csv get the "
                             "hash split. hash: sha256('<split_seed>:<painting_id>') cut at 0.85/0.90. Ignored with "
                             "--artemis_preprocessed_csv (its own split column is used).")
    parser.add_argument("--v2_train_set", choices=V2_TRAIN_SETS, default="full_combined",
                        help="With --contrastive_csv: full_combined (default) keeps every v1.0 and contrastive row; "
                             "combined is ArtEmis v2.0's 'combined' training set (create_parts.py): all contrastive "
                             "rows plus a same-size sample of v1.0 rows (random_state 42, drawn over the v1.0 rows of "
                             "all splits); only the train split is thinned.")
    parser.add_argument("--max_repetition", type=int, default=MAX_REPETITION,
                        help="With --split hash: drop all annotations of paintings whose `repetition` exceeds this "
                             "(default: %(default)s, as the official procedure).")
    parser.add_argument("--max_image_side", type=int, default=MAX_IMAGE_SIDE,
                        help="Shrink images so that the long side is at most this many pixels, aspect kept; smaller "
                             f"images keep their size (default: %(default)s). Stored as JPEG, quality {JPEG_QUALITY}.")
    parser.add_argument("--contrastive_only", action="store_true",
                        help="Keep only paintings with at least 2 distinct emotions (the contrastive training set).")
    parser.add_argument("--skip_missing_images", action="store_true",
                        help="Drop paintings whose image is missing or unreadable instead of stopping with an error. "
                             "They are counted in the report, and the test paintings dropped are listed: the test set "
                             "then differs from the paper's.")
    parser.add_argument("--split_seed", type=int, default=SPLIT_SEED,
                        help="Seed of the hash split (--split hash, and paintings only in Contrastive.csv) "
                             "(default: %(default)s).")
    parser.add_argument("--parquet", action="store_true",
                        help="Also write <output_dir>/hub/data/{split}-0000i-of-0000N.parquet with the image bytes "
                             "embedded, plus a dataset card, ready for `huggingface-cli upload --repo-type dataset`.")
    parser.add_argument("--num_proc", type=int, default=1,
                        help="Processes that decode and resize images in parallel (default: %(default)s).")
    parser.add_argument("--overwrite", action="store_true",
                        help="Replace an earlier result in --output_dir; it is removed only once the new one is "
                             "complete (a failed run leaves it untouched).")
    return parser.parse_args(argv)


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
        split_seed=args.split_seed,
        parquet=args.parquet,
        num_proc=args.num_proc,
        overwrite=args.overwrite,
    )


def main(argv=None):
    return run_command(prepare, parse_args(argv), prog="sevlm-prepare-artemis")


if __name__ == "__main__":
    sys.exit(main())
