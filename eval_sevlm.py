"""Evaluate a SEVLM model (or a predictions file) on a prepared corpus split with the SEVLM/ArtEmis protocol.

    sevlm-eval                                             # outputs/sevlm-demo on data/demo, split test
    sevlm-eval --model_name_or_path DIR --dataset_path PREPARED --split test --output_dir OUT
    sevlm-eval --predictions_file OUT/predictions.jsonl --dataset_path PREPARED --output_dir OUT2
    sevlm-eval --slice_by art_style ...                    # every metric per style, too
    sevlm-eval --compare OUT_A OUT_B --output_dir CMP      # paired comparison of two evaluations

Writes OUT/metrics.json (with 95% bootstrap intervals), OUT/predictions.jsonl, OUT/report.md,
OUT/confusion_matrix.png, OUT/reliability_diagram.png (with emotion scores), OUT/painting_statistics.json (what
--compare reads), OUT/slices.json (with --slice_by) and OUT/eval_args.json.
The metrics are `sevlm.evaluation.metric` (also an `evaluate` module); predictions come from the one prediction
function (`predict_batch`, the paper's free generation). Any emotion taxonomy works: the classes are the corpus's
(and must be the model's). The work is `sevlm.evaluation.run.evaluate_model`.
"""

import logging
import sys
from dataclasses import dataclass, field

from sevlm import DEMO_CORPUS, DEMO_MODEL
from sevlm.cli.arguments import HelpFormatter, parse_flags, run_command
from sevlm.generation import GenerationArguments

MIN_SLICE_SIZE = 30  # sevlm.evaluation.statistics.MIN_SLICE_SIZE (read here without loading the libraries)


@dataclass
class EvalArguments(GenerationArguments):
    model_name_or_path: str | None = field(
        default=None,
        metadata={
            "help": f"Saved SEVLM folder or Hub id (loaded with trust_remote_code). Default: {DEMO_MODEL}, unless "
            "--predictions_file is given (then the model is optional and only supplies the VAD table for vad_distance)."
        },
    )
    dataset_path: str = field(default=DEMO_CORPUS, metadata={"help": "Prepared corpus (a DatasetDict saved with save_to_disk)."})
    split: str = field(default="test", metadata={"help": "Split to evaluate."})
    output_dir: str | None = field(
        default=None, metadata={"help": "Where the outputs go. Default: outputs/eval/<model or predictions folder name>/<split>."}
    )
    overwrite: bool = field(
        default=False,
        metadata={
            "aliases": ["--overwrite_output_dir"],
            "help": "Replace the outputs of an earlier evaluation in --output_dir (only the files it wrote, once the new "
            "ones are complete; anything else in the folder stays).",
        },
    )
    predictions_file: str | None = field(
        default=None,
        metadata={
            "help": "Score an existing predictions.jsonl (rows with painting_id, emotion, explanation and optional "
            "emotion_scores) instead of generating. Only the paintings in the file are scored."
        },
    )
    emotion_classifier: str | None = field(
        default=None,
        metadata={
            "help": "Text-emotion classifier for emotional alignment (EA). Default: <dataset_path>/emotion_classifier. "
            "When the folder holds no classifier, one is trained on the corpus's train split and saved there first."
        },
    )
    batch_size: int = field(default=16, metadata={"help": "Paintings per generation batch (at least 1)."})
    seed: int = field(default=42, metadata={"help": "Random seed (matters with --do_sample)."})
    max_samples: int | None = field(
        default=None, metadata={"help": "Evaluate only the first N paintings (quick checks; at least 1)."}
    )
    device: str | None = field(
        default=None, metadata={"help": "cuda, cuda:1, mps or cpu. Default: accelerate's choice (CUDA, then MPS, then CPU)."}
    )
    bootstrap: int = field(
        default=1000,
        metadata={
            "help": "Bootstrap resamples of the paintings for the 95%% intervals of every metric (and of --compare and "
            "--slice_by); drawn with --seed. 0: no intervals."
        },
    )
    compare: list[str] | None = field(
        default=None,
        metadata={
            "help": "RUN_A RUN_B: compare two evaluation output folders of the same split instead of evaluating. Writes "
            "comparison.json and comparison.md to --output_dir (default outputs/eval/compare/A-vs-B): A, B, B - A, its "
            "paired-bootstrap 95%% interval and a two-sided p-value per metric, over the paintings both runs scored.",
            "metavar": "RUN",
        },
    )
    slice_by: str | None = field(
        default=None,
        metadata={
            "help": "A corpus column with one value per painting (e.g. art_style): every metric per value, with counts "
            "and intervals, in slices.json and report.md."
        },
    )
    min_slice_size: int = field(
        default=MIN_SLICE_SIZE,
        metadata={"help": "Slices with fewer paintings are marked small (their numbers are shown but not stable)."},
    )


def parse_arguments(argv=None):
    from transformers import HfArgumentParser

    parser = HfArgumentParser(EvalArguments, formatter_class=HelpFormatter, prog="sevlm-eval", description=__doc__.split("\n\n")[0])
    (args,) = parse_flags(parser, argv)
    from sevlm.evaluation.run import resolve_defaults

    return resolve_defaults(args)


def evaluate(argv=None):
    args = parse_arguments(argv)
    from sevlm.evaluation.run import compare_evaluations, evaluate_model

    return compare_evaluations(args) if args.compare else evaluate_model(args)


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return run_command(evaluate, argv, prog="sevlm-eval")


if __name__ == "__main__":
    sys.exit(main())
