"""Training and evaluation views of one split of a prepared SEVLM corpus (one row per painting or item).

- `PairedPaintingDataset`: one item per painting with at least 2 distinct emotions: two of its annotations with
  different emotions (the contrastive loss's pairs), re-drawn each epoch, reproducibly.
- `AnnotationDataset`: one item per annotation (plain captioning training).
- `SevlmPairCollator` / `SevlmCollator`: items -> model inputs, via `SevlmProcessor`.
- `evaluation_view`: one item per painting with its references and emotion histogram.

Emotions come out as class names (the corpus records its list: `dataset_scripts.schema.corpus_emotions`).
"""

import bisect
import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset as TorchDataset

from sevlm.data.schema import corpus_emotions, emotion_names


def _emotion_column(hf_dataset):
    """The `emotions` column as lists of class names, without decoding images."""
    corpus_emotions(hf_dataset)  # a clear error for a dataset without the column
    return emotion_names(hf_dataset, hf_dataset.select_columns(["emotions"]).with_format(None)[:]["emotions"])


# ------------------------------------------------------------------------------------------- training views
class PairedPaintingDataset(TorchDataset):
    """Contrastive pairs: item i is two annotations with different emotions of the i-th qualifying painting.

    The pair is drawn from (seed, epoch, i) alone: two distinct emotions uniformly among the painting's distinct
    emotions, then one annotation of each, uniformly. It changes from epoch to epoch but never depends on the
    order of calls, worker processes or earlier epochs, so a resumed run sees the same pairs as an uninterrupted
    one. The HF Trainer / accelerate call `set_epoch` before each epoch.

    Items: `{"image": PIL image, "emotions": [e1, e2], "explanations": [x1, x2]}`.
    """

    def __init__(self, hf_dataset, seed=0):
        self.dataset = hf_dataset.select_columns(["image", "emotions", "explanations"])
        self.names = corpus_emotions(hf_dataset)
        self.seed = int(seed)
        self.epoch = 0
        self.rows = []  # dataset row of each item
        self.groups = []  # per item: [annotation positions of one emotion] per distinct emotion
        for row, emotions in enumerate(_emotion_column(hf_dataset)):
            positions = {}
            for position, emotion in enumerate(emotions):
                positions.setdefault(emotion, []).append(position)
            if len(positions) >= 2:
                self.rows.append(row)
                # Sorted by emotion name: the draw must not depend on the order the annotations were stored in.
                self.groups.append([positions[emotion] for emotion in sorted(positions)])

    def set_epoch(self, epoch):
        self.epoch = int(epoch)

    def _name(self, value):
        return self.names[value] if isinstance(value, int) else value

    def __len__(self):
        return len(self.rows)

    def pair_positions(self, index):
        """(dataset row, [position of annotation 1, position of annotation 2]) of item `index` this epoch."""
        if not 0 <= index < len(self.rows):
            raise IndexError(f"Item {index} out of range: this view has {len(self.rows)} paintings.")
        rng = np.random.default_rng([self.seed, self.epoch, index])
        groups = self.groups[index]
        first, second = rng.choice(len(groups), size=2, replace=False)
        positions = [int(rng.choice(groups[first])), int(rng.choice(groups[second]))]
        return self.rows[index], positions

    def __getitem__(self, index):
        row, positions = self.pair_positions(index)
        example = self.dataset[row]
        emotions = [self._name(example["emotions"][position]) for position in positions]
        return {
            "image": example["image"],
            "emotions": emotions,
            "explanations": [example["explanations"][position] for position in positions],
        }


class AnnotationDataset(TorchDataset):
    """One item per annotation: `{"image", "emotion", "explanation"}` (paintings repeat, once per annotation)."""

    def __init__(self, hf_dataset):
        self.dataset = hf_dataset.select_columns(["image", "emotions", "explanations"])
        self.names = corpus_emotions(hf_dataset)
        # ends[r] = number of annotations in rows 0..r: item i belongs to the first row whose end exceeds i.
        self.ends = list(itertools.accumulate(len(emotions) for emotions in _emotion_column(hf_dataset)))

    def __len__(self):
        return self.ends[-1] if self.ends else 0

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(f"Item {index} out of range: this view has {len(self)} annotations.")
        row = bisect.bisect_right(self.ends, index)
        position = index - (self.ends[row - 1] if row else 0)
        example = self.dataset[row]
        emotion = example["emotions"][position]
        return {
            "image": example["image"],
            "emotion": self.names[emotion] if isinstance(emotion, int) else emotion,
            "explanation": example["explanations"][position],
        }


# ------------------------------------------------------------------------------------------------ collators
@dataclass
class SevlmPairCollator:
    """PairedPaintingDataset items -> `input_ids, attention_mask, token_type_ids, labels` for 2N sequences
    (2k and 2k+1: the two annotations of painting k), `pixel_values` [N, 3, H, W] (one image per pair) and
    `image_index` = [0, 0, 1, 1, ...]."""

    processor: Any

    def text_features(self, features):
        emotions, explanations = [], []
        for number, feature in enumerate(features):
            if len(feature["emotions"]) != 2 or len(feature["explanations"]) != 2:
                raise ValueError(
                    f"Item {number} of the batch holds {len(feature['emotions'])} emotions and "
                    f"{len(feature['explanations'])} explanations; SevlmPairCollator needs pairs "
                    "(use PairedPaintingDataset, or SevlmCollator for one annotation per item)."
                )
            emotions.extend(feature["emotions"])
            explanations.extend(feature["explanations"])
        batch = dict(self.processor.encode_text(emotions, explanations))
        batch["image_index"] = torch.arange(len(features)).repeat_interleave(2)
        return batch

    def __call__(self, features):
        batch = self.text_features(features)
        batch["pixel_values"] = self.processor.preprocess_images([feature["image"] for feature in features])
        return batch


@dataclass
class SevlmCollator:
    """AnnotationDataset items -> `input_ids, attention_mask, token_type_ids, labels, pixel_values` (one image
    per sequence)."""

    processor: Any

    def text_features(self, features):
        emotions = [feature["emotion"] for feature in features]
        explanations = [feature["explanation"] for feature in features]
        return dict(self.processor.encode_text(emotions, explanations))

    def __call__(self, features):
        batch = self.text_features(features)
        batch["pixel_values"] = self.processor.preprocess_images([feature["image"] for feature in features])
        return batch


# ------------------------------------------------------------------------------------------- evaluation view
def evaluation_view(hf_dataset):
    """One row per painting: `painting_id`, `image`, `references` (all its explanations), `emotion_histogram`
    (shares in the corpus's class order). A `datasets.Dataset`: no image is decoded or copied to build it.

    The reference emotion of a painting is its majority emotion, decided by the metric module's one rule
    (`metrics/sevlm/sevlm.py: majority_emotion`) from the histogram.
    """
    view = hf_dataset.select_columns(["painting_id", "image", "explanations", "emotion_histogram"])
    return view.rename_column("explanations", "references")


__all__ = [
    "AnnotationDataset",
    "PairedPaintingDataset",
    "SevlmCollator",
    "SevlmPairCollator",
    "evaluation_view",
]
