"""Train SEVLM with the Hugging Face Trainer (single process, `accelerate launch` or `torchrun`).

    sevlm-train                                                 # the demo: tiny model, generated corpus, CPU
    sevlm-train --args_file configs/sevlm-artemis-v1.args       # the paper's recipe on ArtEmis v1.0
    accelerate launch train_sevlm.py --args_file configs/sevlm-artemis-v1.args --output_dir outputs/mine

With no arguments the demo's flags are used (`configs/demo.args`, shipped with the package); `--args_file FILE`
reads flags from a file and the flags after it override them. Every `TrainingArguments` flag works (`--help` lists
them all). The emotion classes are the corpus's own (any taxonomy). The work is `sevlm.training.train`.
"""

import sys

from sevlm import config_file
from sevlm.cli.arguments import HelpFormatter, expand_args_files, parse_flags, read_args_file, run_command

HELP_ALL = "--help-all"


def parse_arguments(argv=None):
    """(model_args, data_args, training_args) from `--args_file FILE`s (in order; later flags win) and the command
    line; no arguments: the demo."""
    from transformers import HfArgumentParser

    from sevlm.training_arguments import DataArguments, ModelArguments, RecipeArguments

    argv = sys.argv[1:] if argv is None else list(argv)
    description = (
        __doc__.split("\n\n")[0]
        + " Flags may also come from files: --args_file FILE (several allowed; later flags override earlier ones)."
    )
    if HELP_ALL not in argv and ("-h" in argv or "--help" in argv):
        # SEVLM's flags and the recipe's, at once; transformers' TrainingArguments (which need torch) on request.
        brief = HfArgumentParser(
            (ModelArguments, DataArguments, RecipeArguments),
            formatter_class=HelpFormatter, prog="sevlm-train",
            description=description,
            epilog=f"Every other flag of transformers' TrainingArguments works too (--fp16, --bf16, "
            f"--gradient_accumulation_steps, --report_to, --push_to_hub, --resume_from_checkpoint, ...): "
            f"`sevlm-train {HELP_ALL}` lists them all.",
        )
        brief.parse_args(["--help"])
    from sevlm.training import SevlmTrainingArguments, check_arguments

    parser = HfArgumentParser((ModelArguments, DataArguments, SevlmTrainingArguments), formatter_class=HelpFormatter, prog="sevlm-train", description=description)
    if HELP_ALL in argv:
        parser.parse_args(["--help"])
    args = expand_args_files(argv) if argv else read_args_file(config_file("demo.args"))
    model_args, data_args, training_args = parse_flags(parser, args, look_for_args_file=False)
    check_arguments(model_args, data_args, training_args)
    return model_args, data_args, training_args


def train(argv=None):
    """Parse `argv` and train; returns the final metrics."""
    arguments = parse_arguments(argv)
    from sevlm.training import train as run_training

    return run_training(*arguments)


def main(argv=None):
    return run_command(train, argv, prog="sevlm-train")


if __name__ == "__main__":
    sys.exit(main())
