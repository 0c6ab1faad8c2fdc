"""ArtEmis's own preprocessing (`preprocess_artemis_data.py` of github.com/optas/artemis, unmodified) on today's
Python and packages, with the three compatibility shims of `sevlm.data.artemis_preprocessing`.

Run it from this repository's root with the Python of an environment that has ArtEmis's dependencies:

    python -m dataset_scripts.run_artemis_preprocessing --artemis_repo ../artemis \
        --raw_artemis_data_csv artemis/artemis_dataset_release_v0.csv --output_dir artemis/preprocessed

It writes the script's files (artemis_preprocessed.csv, vocabulary.pkl, config.json.txt,
artemis_gt_references_grouped.pkl) and run_artemis_preprocessing.json (package versions, shims, rows per split).
"""

import argparse
import sys

from sevlm.data.artemis_preprocessing import (
    PREPROCESSED_CSV,
    RUN_RECORD,
    SHIMS,
    ArtemisPreprocessingError,
    run_artemis_preprocessing,
    versions_text,
)
from sevlm.io import display_path

TRUE_WORDS, FALSE_WORDS = ("true", "yes", "1"), ("false", "no", "0")


def boolean(text):
    """true/false (also yes/no, 1/0), as ArtEmis's own str2bool flags take them."""
    if text.lower() in TRUE_WORDS:
        return True
    if text.lower() in FALSE_WORDS:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def build_parser():
    # argparse, not HfArgumentParser: this command runs in ArtEmis's environment, which has no transformers.
    parser = argparse.ArgumentParser(
        prog="python -m dataset_scripts.run_artemis_preprocessing",
        description=(
            "Run ArtEmis's preprocess_artemis_data.py (from a checkout of github.com/optas/artemis, unmodified) with "
            "shims for today's pandas, scikit-learn and NLTK, and write its files into --output_dir plus "
            f"{RUN_RECORD} (package versions, shims, rows per split). The options after --output_dir are the "
            "script's own (its flag in brackets); left out, they keep its default."
        ),
    )
    parser.add_argument("--artemis_repo", required=True,
                        help="Root of a checkout of github.com/optas/artemis (the folder with setup.py). Its "
                             "artemis/scripts/preprocess_artemis_data.py runs as it is; its spell-checking files "
                             "artemis/data/symspell_frequency_dictionary_en_82_765.txt and "
                             "glove.6B.100d.vocabulary.txt are read from there.")
    parser.add_argument("--raw_artemis_data_csv", required=True,
                        help="[-raw-artemis-data-csv] ArtEmis's raw annotations, artemis_dataset_release_v0.csv.")
    parser.add_argument("--output_dir", required=True,
                        help=f"[-save-out-dir] Where the script's files ({PREPROCESSED_CSV}, vocabulary.pkl, "
                             f"config.json.txt, artemis_gt_references_grouped.pkl) and {RUN_RECORD} go. The script "
                             "writes into a staging folder beside it; the files are moved here once it has finished.")
    parser.add_argument("--preprocess_for_deep_nets", type=boolean, default=True,
                        help="[--preprocess-for-deep-nets] true (default here; the script's own default is false): "
                             "the preprocessing of ArtEmis's deep nets, which SEVLM used: utterances under 5 tokens "
                             "or above the training split's 95th length percentile dropped, words under 5 uses in "
                             "training encoded as <unk>, paintings with 41 or more annotations in split 'rest'. It "
                             "sets the next four options; false lets you choose them.")
    parser.add_argument("--too_long_utter_prc", type=int, default=None,
                        help="[--too-long-utter-prc] Drop utterances longer than this percentile of the training "
                             "split's token lengths (script default 100: none). Needs --preprocess_for_deep_nets "
                             "false.")
    parser.add_argument("--too_short_len", type=int, default=None,
                        help="[--too-short-len] Drop utterances with fewer tokens (script default 0). Needs "
                             "--preprocess_for_deep_nets false.")
    parser.add_argument("--min_word_freq", type=int, default=None,
                        help="[--min-word-freq] Words used fewer times in the training split become <unk> in "
                             "tokens_encoded and vocabulary.pkl (script default 0). Needs --preprocess_for_deep_nets "
                             "false.")
    parser.add_argument("--too_high_repetition", type=int, default=None,
                        help="[--too-high-repetition] Paintings with at least this many annotations go to split "
                             "'rest' (script default -1: none). Needs --preprocess_for_deep_nets false.")
    parser.add_argument("--random_seed", type=int, default=None,
                        help="[--random-seed] Seed of the train/val/test split (script default 2021, the official "
                             "split).")
    parser.add_argument("--split_loads", type=float, nargs=3, default=None, metavar=("TRAIN", "VAL", "TEST"),
                        help="[--split-loads] Shares of paintings in train, val and test, summing to 1 (script "
                             "default 0.85 0.05 0.1).")
    parser.add_argument("--automatic_spell_check", type=boolean, default=None,
                        help="[--automatic-spell-check] true (script default): tokens that are neither GloVe words "
                             "nor in ArtEmis's word list are replaced by SymSpell's best correction within one edit. "
                             "Its manual corrections apply either way.")
    parser.add_argument("--group_gt_anno", type=boolean, default=None,
                        help="[--group-gt-anno] true (script default): also write "
                             "artemis_gt_references_grouped.pkl, the annotations grouped per painting.")
    parser.add_argument("--n_train_examples", type=int, default=None,
                        help="[--n-train-examples] Keep only the first this-many annotations after the split (for "
                             "a quick trial; the result is not ArtEmis's data).")
    parser.add_argument("--overwrite", action="store_true",
                        help="Replace the files of an earlier result in --output_dir, only once the new ones are "
                             "complete; anything else in the folder stays, and a file of the same name that this tool "
                             "did not write is never replaced.")
    parser.add_argument("--disable_shim", action="append", choices=sorted(SHIMS), default=[],
                        help="Run without this shim (repeatable), to see the failure it prevents: "
                             + "; ".join(f"{name}: {text}" for name, text in SHIMS.items()) + ".")
    return parser


def parse_args(argv=None):
    return build_parser().parse_args(argv)


OPTION_NAMES = ("preprocess_for_deep_nets", "too_long_utter_prc", "too_short_len", "min_word_freq",
                "too_high_repetition", "random_seed", "split_loads", "automatic_spell_check", "group_gt_anno",
                "n_train_examples")


def main(argv=None):
    args = parse_args(argv)
    options = {name: getattr(args, name) for name in OPTION_NAMES}
    shims = tuple(name for name in SHIMS if name not in args.disable_shim)
    try:
        record = run_artemis_preprocessing(args.artemis_repo, args.raw_artemis_data_csv, args.output_dir,
                                           options=options, shims=shims, overwrite=args.overwrite)
    except (ArtemisPreprocessingError, FileExistsError) as error:
        print(f"error: {display_path(str(error))}", file=sys.stderr)
        return 1
    splits = ", ".join(f"{split} {counts['paintings']} paintings / {counts['annotations']} annotations"
                       for split, counts in record["splits"].items())
    shims = ", ".join(record["shims"]) or "none"
    print(f"\nArtEmis's preprocessing ran with {versions_text(record)}; shims: {shims}.")
    print(f"Script: {record['script_is']}.")
    for warning in record["warnings"]:
        print(f"Warning: {warning}")
    print(f"{PREPROCESSED_CSV}: {splits}.")
    print(f"Written to {display_path(args.output_dir)} ({', '.join(record['outputs'])}; the run in {RUN_RECORD}).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
