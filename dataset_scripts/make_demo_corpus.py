"""Generate a demo corpus (procedural paintings or product pictures): `sevlm-demo-corpus` (the work is
`sevlm.data.demo.make_demo_corpus`)."""

import sys
from dataclasses import dataclass, field
from pathlib import Path

from sevlm.cli.arguments import HelpFormatter, parse_flags, run_command
from sevlm.data.settings import DEMO_CORPORA, DEMO_LEXICON_NAME, DEMO_LEXICON_NOTE
from sevlm.io import display_path

DESCRIPTION = (
    "Generate a small procedural demo corpus (the schema of every SEVLM corpus) and its illustrative VAD lexicon, for "
    "offline training, evaluation and prediction."
)


@dataclass
class DemoCorpusArguments:
    taxonomy: str = field(default="artemis", metadata={
        "choices": sorted(DEMO_CORPORA),
        "help": "artemis: ArtEmis-like paintings with the 9 ArtEmis emotions; product-reviews: product pictures with "
                "customer feedback in 5 classes (delighted, satisfied, mixed feelings, disappointed, frustrated)."})
    output_dir: str | None = field(default=None, metadata={
        "help": f"Where to save it; unset: {DEMO_CORPORA['artemis'][0]} for artemis, "
                f"{DEMO_CORPORA['product-reviews'][0]} for product-reviews. Other files in the folder are left "
                "alone."})
    num_paintings: int | None = field(default=None, metadata={
        "help": f"Number of items, 4-6 annotations each; unset: {DEMO_CORPORA['artemis'][1]} for artemis, "
                f"{DEMO_CORPORA['product-reviews'][1]} for product-reviews."})
    seed: int = field(default=0, metadata={"help": "Generator seed; same seed, same corpus."})
    overwrite: bool = field(default=False, metadata={
        "help": "Replace a demo corpus made with other parameters (only the files it wrote, once the new ones are "
                "complete)."})


def build_parser():
    from transformers import HfArgumentParser

    return HfArgumentParser(DemoCorpusArguments, formatter_class=HelpFormatter, prog="sevlm-demo-corpus", description=DESCRIPTION)


def parse_args(argv=None):
    (args,) = parse_flags(build_parser(), argv)
    return args


def generate(args):
    from sevlm.data.demo import make_demo_corpus

    corpus = make_demo_corpus(args.output_dir, args.num_paintings, args.seed, args.overwrite, args.taxonomy)
    output_dir = Path(args.output_dir or DEMO_CORPORA[args.taxonomy][0])
    print(corpus)
    print(f"Saved to {display_path(output_dir)} (lexicon: {display_path(output_dir / DEMO_LEXICON_NAME)}, {DEMO_LEXICON_NOTE})")


def main(argv=None):
    return run_command(generate, parse_args(argv), prog="sevlm-demo-corpus")


if __name__ == "__main__":
    sys.exit(main())
