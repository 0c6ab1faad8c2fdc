"""sevlm-baseline: a zero-shot image-text-to-text model (LLaVA, Idefics, Qwen-VL, ...) on the SEVLM protocol.

    sevlm-baseline --model_name_or_path llava-hf/llava-1.5-7b-hf --dataset_path data/demo --split test --output_dir OUT
    sevlm-eval --predictions_file OUT/predictions.jsonl --dataset_path data/demo --split test

Asks the model, for each painting, for one of the corpus's emotions and a one-sentence reason, parses both from its
free text and writes OUT/predictions.jsonl (scored by sevlm-eval exactly as SEVLM is), OUT/baseline_summary.json
(how many answers named no emotion of the corpus: they are kept, with emotion "") and OUT/baseline_args.json.
"""

import logging
import sys

from sevlm.cli.arguments import HelpFormatter, parse_flags, run_command
from sevlm.evaluation.baseline import BaselineArguments


def baseline(argv=None):
    from transformers import HfArgumentParser

    parser = HfArgumentParser(BaselineArguments, formatter_class=HelpFormatter, prog="sevlm-baseline", description=__doc__.split("\n\n")[0])
    (args,) = parse_flags(parser, argv)
    from sevlm.evaluation.baseline import run_baseline

    return run_baseline(args)


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return run_command(baseline, argv, prog="sevlm-baseline")


if __name__ == "__main__":
    sys.exit(main())
