"""Generate a demo corpus (procedural paintings or product pictures): `sevlm-demo-corpus` (the work is
`sevlm.data.demo.make_demo_corpus`)."""

import argparse
import sys
from pathlib import Path

from sevlm.cli.arguments import run_command
from sevlm.data.settings import DEMO_CORPORA, DEMO_LEXICON_NAME, DEMO_LEXICON_NOTE
from sevlm.io import display_path


def build_parser():
    parser = argparse.ArgumentParser(
        prog="sevlm-demo-corpus",
        description="Generate a small procedural demo corpus (the schema of every SEVLM corpus) and its illustrative "
                    "VAD lexicon, for offline training, evaluation and prediction.",
    )
    parser.add_argument("--taxonomy", choices=sorted(DEMO_CORPORA), default="artemis",
                        help="artemis (default): ArtEmis-like paintings with the 9 ArtEmis emotions; product-reviews: "
                             "product pictures with customer feedback in 5 classes (delighted, satisfied, mixed "
                             "feelings, disappointed, frustrated).")
    parser.add_argument("--output_dir", default=None,
                        help=f"Where to save it (default: {DEMO_CORPORA['artemis'][0]} for artemis, "
                             f"{DEMO_CORPORA['product-reviews'][0]} for product-reviews).")
    parser.add_argument("--num_paintings", type=int, default=None,
                        help=f"Number of items, 4-6 annotations each (default: {DEMO_CORPORA['artemis'][1]} for "
                             f"artemis, {DEMO_CORPORA['product-reviews'][1]} for product-reviews).")
    parser.add_argument("--seed", type=int, default=0, help="Generator seed; same seed, same corpus (default: %(default)s).")
    parser.add_argument("--overwrite", action="store_true",
                        help="Replace a demo corpus made with other parameters (only once the new one is complete).")
    return parser


def generate(args):
    from sevlm.data.demo import make_demo_corpus

    corpus = make_demo_corpus(args.output_dir, args.num_paintings, args.seed, args.overwrite, args.taxonomy)
    output_dir = Path(args.output_dir or DEMO_CORPORA[args.taxonomy][0])
    print(corpus)
    print(f"Saved to {display_path(output_dir)} (lexicon: {display_path(output_dir / DEMO_LEXICON_NAME)}, {DEMO_LEXICON_NOTE})")


def main(argv=None):
    return run_command(generate, build_parser().parse_args(argv), prog="sevlm-demo-corpus")


if __name__ == "__main__":
    sys.exit(main())
