"""sevlm-baseline: a zero-shot image-text-to-text model (LLaVA, Idefics, Qwen-VL, ...) on the SEVLM protocol.

    sevlm-baseline --model_name_or_path llava-hf/llava-1.5-7b-hf --dataset_path data/demo --split test --output_dir OUT
    python eval_sevlm.py --predictions_file OUT/predictions.jsonl --dataset_path data/demo --split test

Asks the model, for each painting, for one of the corpus's emotions and a one-sentence reason, parses both from its
free text and writes OUT/predictions.jsonl (scored by eval_sevlm.py exactly as SEVLM is), OUT/baseline_summary.json
(how many answers named no emotion of the corpus: they are kept, with emotion "") and OUT/baseline_args.json.
"""

import logging
import sys

from sevlm.evaluation.baseline import BaselineArguments, run_baseline


def main(argv=None):
    from transformers import HfArgumentParser

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    parser = HfArgumentParser(BaselineArguments, description=__doc__.split("\n\n")[0])
    (args,) = parser.parse_args_into_dataclasses(args=argv)
    try:
        run_baseline(args)
    except (FileExistsError, FileNotFoundError, OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
