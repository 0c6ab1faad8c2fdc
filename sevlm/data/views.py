"""Training and evaluation views of one split of a prepared SEVLM corpus (one row per painting or item).

- `PairedPaintingDataset`: one item per painting with at least 2 distinct emotions: two of its annotations with
  different emotions (the contrastive loss's pairs), re-drawn each epoch, reproducibly.
- `AnnotationDataset`: one item per annotation (plain captioning training).
- `SevlmPairCollator` / `SevlmCollator`: items -> model inputs: the text through `SevlmProcessor`, the images through
  `PixelValues` (the processor's image preprocessing at training speed).
- `evaluation_view`: one item per painting with its references and emotion histogram.

Emotions come out as class names (the corpus records its list: `sevlm.data.schema.corpus_emotions`). Training items
carry each image as its stored file (bytes), decoded once, in the collator, by `processing_sevlm.load_image`.
"""

import bisect
import itertools
from dataclasses import dataclass, field
from typing import Any

import datasets
import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset as TorchDataset

from processing_sevlm import DRAFT_MARGIN, load_image
from sevlm.data.schema import corpus_emotions, emotion_names

TRAINING_COLUMNS = ["image", "emotions", "explanations"]


def _emotion_column(hf_dataset):
    """The `emotions` column as lists of class names, without decoding images."""
    corpus_emotions(hf_dataset)  # a clear error for a dataset without the column
    return emotion_names(hf_dataset, hf_dataset.select_columns(["emotions"]).with_format(None)[:]["emotions"])


def _undecoded(hf_dataset):
    """The training columns with images left as their stored files (`{"bytes", "path"}`): the collator decodes them,
    once, at the size the model needs."""
    return hf_dataset.select_columns(TRAINING_COLUMNS).cast_column("image", datasets.Image(decode=False))


class SharedEpoch:
    """An epoch number that worker processes see change: the DataLoader's persistent workers keep their own copy of the
    dataset, so a plain attribute set in the main process would never reach them (their pairs would never change)."""

    def __init__(self, epoch=0):
        self.value = torch.zeros((), dtype=torch.int64).share_memory_()
        self.value.fill_(int(epoch))

    def set(self, epoch):
        self.value.fill_(int(epoch))

    def get(self):
        return int(self.value)


# ------------------------------------------------------------------------------------------- training views
class PairedPaintingDataset(TorchDataset):
    """Contrastive pairs: item i is two annotations with different emotions of the i-th qualifying painting.

    The pair is drawn from (seed, epoch, i) alone: two distinct emotions uniformly among the painting's distinct
    emotions, then one annotation of each, uniformly. It changes from epoch to epoch but never depends on the
    order of calls, worker processes or earlier epochs, so a resumed run sees the same pairs as an uninterrupted
    one. The trainer calls `set_epoch` before each epoch (`sevlm.training.PairEpochCallback`); the epoch is shared with
    the DataLoader's worker processes, persistent ones included.

    Items: `{"image": {"bytes", "path"} of the stored file, "emotions": [e1, e2], "explanations": [x1, x2]}`.
    """

    def __init__(self, hf_dataset, seed=0):
        self.dataset = _undecoded(hf_dataset)
        self.names = corpus_emotions(hf_dataset)
        self.seed = int(seed)
        self._epoch = SharedEpoch()
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

    @property
    def epoch(self):
        return self._epoch.get()

    def set_epoch(self, epoch):
        self._epoch.set(epoch)

    def __len__(self):
        return len(self.rows)

    def pair_positions(self, index):
        """(dataset row, [position of annotation 1, position of annotation 2]) of item `index` this epoch."""
        if not 0 <= index < len(self.rows):
            raise IndexError(f"Item {index} out of range: this view has {len(self.rows)} paintings.")
        rng = np.random.default_rng([self.seed, self._epoch.get(), index])
        groups = self.groups[index]
        first, second = rng.choice(len(groups), size=2, replace=False)
        positions = [int(rng.choice(groups[first])), int(rng.choice(groups[second]))]
        return self.rows[index], positions

    def __getitem__(self, index):
        row, positions = self.pair_positions(index)
        example = self.dataset[row]
        return {
            "image": example["image"],
            "emotions": [self.names[example["emotions"][position]] for position in positions],
            "explanations": [example["explanations"][position] for position in positions],
        }


class AnnotationDataset(TorchDataset):
    """One item per annotation: `{"image", "emotion", "explanation"}` (paintings repeat, once per annotation; the
    image as its stored file)."""

    def __init__(self, hf_dataset):
        self.dataset = _undecoded(hf_dataset)
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
        return {
            "image": example["image"],
            "emotion": self.names[example["emotions"][position]],
            "explanation": example["explanations"][position],
        }


# ------------------------------------------------------------------------------------------------ images
# PIL filters that torch's antialiased resize of uint8 images reproduces (to within one grey level, ~6x faster).
TORCH_FILTERS = {Image.Resampling.BICUBIC: "bicubic", Image.Resampling.BILINEAR: "bilinear"}


def image_source(value):
    """A training item's image as `load_image` reads it: a stored file (`{"bytes", "path"}`, as `datasets.Image(decode=
    False)` gives it) as its bytes (or its path); anything else as it is."""
    if isinstance(value, dict):
        return value.get("bytes") or value.get("path")
    return value


def _size(value, key):
    return value.get(key) if isinstance(value, dict) else getattr(value, key, None)


@dataclass
class PixelValues:
    """`processor.preprocess_images(images)` for training batches, at training speed, with the processor's numbers.

    The processor owns preprocessing: its image processor's settings (size, filter, rescale factor, mean, std) say
    what the model sees. This applies them with cheaper means, for the settings SEVLM uses (a resize to a fixed size,
    no crop to another size, no padding):
    - each image is read once by `processing_sevlm.load_image` from its stored bytes; a JPEG much larger than the
      input is decoded at a reduced scale that still keeps `DRAFT_MARGIN` times the input size;
    - a bicubic or bilinear resize is done by torch's antialiased uint8 resize, which reproduces PIL's filter to within
      one grey level (other filters: PIL's own resize);
    - rescaling and normalising run once on the whole uint8 batch as tensor operations.
    Other settings fall back to `processor.preprocess_images`. tests/test_views.py holds both paths to the same
    numbers: at most one grey level apart for images the size of a prepared corpus's (448 px).
    """

    processor: Any
    settings: dict | None = field(init=False, default=None)

    def __post_init__(self):
        self.settings = fast_settings(self.processor.image_processor)

    def __call__(self, images):
        if self.settings is None:
            return self.processor.preprocess_images([image_source(image) for image in images])
        width, height = self.settings["size"]
        draft = (DRAFT_MARGIN * width, DRAFT_MARGIN * height)
        pixels = [self.resized(load_image(image_source(image), n, draft_size=draft)) for n, image in enumerate(images)]
        batch = torch.stack(pixels).float()
        if self.settings["rescale"] is not None:
            batch.mul_(self.settings["rescale"])
        if self.settings["mean"] is not None:
            batch.sub_(self.settings["mean"]).div_(self.settings["std"])
        return batch

    def resized(self, image):
        """An RGB PIL image at the input size, as a uint8 tensor [3, H, W]."""
        size, resample = self.settings["size"], self.settings["resample"]
        if image.size != size and resample not in TORCH_FILTERS:
            image = image.resize(size, resample)
        pixels = torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1)
        if image.size != size:
            width, height = size
            pixels = torch.nn.functional.interpolate(
                pixels.unsqueeze(0), size=(height, width), mode=TORCH_FILTERS[resample], antialias=True
            ).squeeze(0)
        return pixels


def fast_settings(image_processor):
    """What `PixelValues` needs of an image processor (`size` as (width, height), `resample`, `rescale`, `mean` and
    `std` as [3, 1, 1] tensors), or None when its settings ask for steps it does not reproduce."""
    get = lambda name, default=None: getattr(image_processor, name, default)  # noqa: E731
    size = get("size")
    width, height = _size(size, "width"), _size(size, "height")
    if not get("do_resize", True) or not width or not height or get("do_pad", False):
        return None
    if get("do_center_crop", False):
        crop = get("crop_size")
        if (_size(crop, "width"), _size(crop, "height")) != (width, height):
            return None  # a crop to another size than the resize
    try:
        resample = Image.Resampling(int(get("resample", Image.Resampling.BICUBIC)))
    except (TypeError, ValueError):
        return None  # not a PIL filter (e.g. a torchvision interpolation mode)
    settings = {"size": (int(width), int(height)), "resample": resample, "rescale": None, "mean": None, "std": None}
    if get("do_rescale", True):
        settings["rescale"] = float(get("rescale_factor", 1 / 255))
    if get("do_normalize", True):
        mean, std = get("image_mean"), get("image_std")
        if mean is None or std is None:
            return None
        settings["mean"] = torch.tensor(mean, dtype=torch.float32).reshape(-1, 1, 1).expand(3, 1, 1)
        settings["std"] = torch.tensor(std, dtype=torch.float32).reshape(-1, 1, 1).expand(3, 1, 1)
    return settings


# ------------------------------------------------------------------------------------------------ collators
@dataclass
class SevlmPairCollator:
    """PairedPaintingDataset items -> `input_ids, attention_mask, token_type_ids, labels` for 2N sequences
    (2k and 2k+1: the two annotations of painting k), `pixel_values` [N, 3, H, W] (one image per pair) and
    `image_index` = [0, 0, 1, 1, ...]."""

    processor: Any
    pixel_values: PixelValues = field(init=False)

    def __post_init__(self):
        self.pixel_values = PixelValues(self.processor)

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
        batch["pixel_values"] = self.pixel_values([feature["image"] for feature in features])
        return batch


@dataclass
class SevlmCollator:
    """AnnotationDataset items -> `input_ids, attention_mask, token_type_ids, labels, pixel_values` (one image
    per sequence)."""

    processor: Any
    pixel_values: PixelValues = field(init=False)

    def __post_init__(self):
        self.pixel_values = PixelValues(self.processor)

    def text_features(self, features):
        emotions = [feature["emotion"] for feature in features]
        explanations = [feature["explanation"] for feature in features]
        return dict(self.processor.encode_text(emotions, explanations))

    def __call__(self, features):
        batch = self.text_features(features)
        batch["pixel_values"] = self.pixel_values([feature["image"] for feature in features])
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
    "PixelValues",
    "SevlmCollator",
    "SevlmPairCollator",
    "evaluation_view",
]
