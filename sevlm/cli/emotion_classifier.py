"""Train the text-emotion classifier that judges emotional alignment (EA): `sevlm-emotion-classifier`.

    sevlm-emotion-classifier --dataset_path data/demo            # -> data/demo/emotion_classifier
"""

import logging
import os
import sys
from dataclasses import dataclass, field

from sevlm.cli.arguments import HelpFormatter, parse_flags, run_command


@dataclass
class ClassifierArguments:
    dataset_path: str = field(metadata={"help": "A prepared SEVLM dataset (DatasetDict saved with save_to_disk)."})
    output_dir: str | None = field(default=None, metadata={"help": "Where to save; default <dataset_path>/emotion_classifier."})
    embedding_dim: int = field(default=64, metadata={"help": "Width of the word/bigram embeddings."})
    min_count: int = field(default=2, metadata={"help": "Drop words/bigrams seen fewer times in the training split."})
    max_features: int = field(default=100_000, metadata={"help": "Keep at most this many (most frequent) features."})
    epochs: int = field(default=5, metadata={"help": "Passes over the training annotations."})
    batch_size: int = field(default=256, metadata={"help": "Annotations per optimisation step."})
    learning_rate: float = field(default=5e-3, metadata={"help": "Adam learning rate."})
    seed: int = field(default=0, metadata={"help": "Seed for initialisation and shuffling."})
    overwrite: bool = field(default=False, metadata={"help": "Replace a classifier already in --output_dir (once the new one is trained)."})


def train(argv=None):
    from transformers import HfArgumentParser

    parser = HfArgumentParser(
        ClassifierArguments,
        formatter_class=HelpFormatter, prog="sevlm-emotion-classifier",
        description="Train the text-emotion classifier used for emotional alignment (EA).",
    )
    (args,) = parse_flags(parser, argv)
    from sevlm.evaluation.classifier import train_from_dataset

    output_dir = args.output_dir or os.path.join(args.dataset_path, "emotion_classifier")
    _, results = train_from_dataset(
        args.dataset_path, output_dir, args.embedding_dim, args.min_count, args.max_features, args.epochs,
        args.batch_size, args.learning_rate, args.seed, overwrite=args.overwrite,
    )
    accuracy = results.get("validation_accuracy")
    shown = f"{accuracy:.4f} (chance {results['validation_chance_accuracy']:.4f})" if accuracy is not None else "n/a (no validation split)"
    print(f"Emotion classifier saved to {output_dir}; validation accuracy {shown} "
          f"({results.get('num_validation_annotations', 0)} annotations).")


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    return run_command(train, argv, prog="sevlm-emotion-classifier")


if __name__ == "__main__":
    sys.exit(main())
