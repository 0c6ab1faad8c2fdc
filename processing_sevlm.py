"""SEVLM processor: CLIP image preprocessing + GPT-2 style tokenisation of `<bos> the emotion is {emotion} because {explanation} <eos>`."""

import os

import numpy as np
import torch
from PIL import Image
from transformers import AutoImageProcessor, AutoTokenizer, PreTrainedTokenizerBase, ProcessorMixin
from transformers.feature_extraction_utils import BatchFeature

try:
    from .configuration_sevlm import ARTEMIS_EMOTIONS
except ImportError:
    from configuration_sevlm import ARTEMIS_EMOTIONS

PAD_TOKEN = "<pad>"
EMOTION_TOKEN = "<emotion>"
EXPLANATION_TOKEN = "<explanation>"
BOS_EOS_TOKEN = "<|endoftext|>"
IGNORE_INDEX = -100
# CLIP's normalisation constants (openai/clip-vit-*), used when no pretrained image processor is given.
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


def to_rgb_image(image, index=0):
    """Return `image` (PIL image, numpy array, torch tensor or file path) as an RGB PIL image.

    Transparent images are composited on white (paintings scanned with alpha would otherwise turn black);
    grayscale, palette, CMYK and 16-bit images are converted.
    """
    if isinstance(image, (str, os.PathLike)):
        try:
            with Image.open(image) as opened:
                opened.load()
                image = opened.copy()
        except (OSError, ValueError) as error:
            raise ValueError(f"Image {index} ({image}) cannot be read: {error}") from error
    elif isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
    if isinstance(image, np.ndarray):
        image = _array_to_pil(image, index)
    if not isinstance(image, Image.Image):
        raise TypeError(
            f"Image {index} has type {type(image).__name__}; pass a PIL image, a numpy array (HxW, HxWx3 or HxWx4), "
            "a torch tensor or a file path."
        )
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        array = np.asarray(image, dtype=np.float32)
        peak = array.max() if array.size and array.max() > 0 else 1.0
        image = Image.fromarray((array / peak * 255).clip(0, 255).astype(np.uint8))
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, image.convert("RGBA")).convert("RGB")
    return image if image.mode == "RGB" else image.convert("RGB")


def _array_to_pil(array, index):
    if array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[-1] not in (1, 3, 4):
        array = array.transpose(1, 2, 0)  # channels-first -> channels-last
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (3, 4)):
        raise ValueError(f"Image {index}: array of shape {array.shape} is not HxW, HxWx3 or HxWx4.")
    if array.dtype != np.uint8:
        if np.issubdtype(array.dtype, np.floating) and array.max(initial=0) <= 1.0:
            array = array * 255.0  # floats in [0, 1]
        array = np.clip(array, 0, 255).astype(np.uint8)
    return Image.fromarray(array)


def train_tokenizer(texts, vocab_size=2000, min_frequency=2):
    """Train a small byte-level BPE tokenizer (GPT-2 style) on `texts`, offline.

    For tests and the demo model; real training uses the pretrained GPT-2 tokenizer. The result already holds
    the special tokens SEVLM needs.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Tokenizer

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[BOS_EOS_TOKEN, PAD_TOKEN, EMOTION_TOKEN, EXPLANATION_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(texts, trainer)
    return GPT2Tokenizer(
        tokenizer_object=backend,
        bos_token=BOS_EOS_TOKEN,
        eos_token=BOS_EOS_TOKEN,
        unk_token=BOS_EOS_TOKEN,
        pad_token=PAD_TOKEN,
    )


class SevlmProcessor(ProcessorMixin):
    r"""
    Builds SEVLM inputs from paintings and (optionally) emotions and explanations.

    - `processor(images=..., emotions=..., explanations=...)`: training sequences
      `<bos> the emotion is {emotion} because {explanation} <eos>` with `input_ids`, `attention_mask`,
      `token_type_ids` (`<emotion>` up to the emotion name, `<explanation>` from the connector on), `labels`
      (`<bos>` and padding set to -100), right-padded and cut to `max_length` tokens (the explanation is
      shortened, `<eos>` is kept).
    - `processor(images=...)`: the inference prompt `<bos> the emotion is`.
    - `processor(images=..., emotions=...)`: the prompt `<bos> the emotion is {emotion} because`, to explain a
      given emotion (left-padded for generation).

    Images keep the whole painting: they are resized to a square (no centre crop) by the image processor.

    Args:
        image_processor: a CLIP image processor.
        tokenizer: a GPT-2 style tokenizer; `<pad>`, `<emotion>` and `<explanation>` are added when missing.
        emotions (`list[str]`, *optional*): class names in index order (default: the 9 ArtEmis classes).
        prompt_text (`str`, defaults to `" the emotion is"`), connector_text (`str`, defaults to `" because"`).
        max_length (`int`, defaults to 30): longest training sequence, in tokens.
    """

    def __init__(
        self,
        image_processor=None,
        tokenizer=None,
        emotions=None,
        prompt_text=" the emotion is",
        connector_text=" because",
        max_length=30,
        **kwargs,
    ):
        super().__init__(image_processor, tokenizer, **kwargs)
        self.emotions = list(emotions) if emotions is not None else list(ARTEMIS_EMOTIONS)
        self.prompt_text = prompt_text
        self.connector_text = connector_text
        self.max_length = max_length
        self._add_special_tokens()

    # ----------------------------------------------------------------------------------------------- setup
    @classmethod
    def from_vision_text(cls, vision, text, image_size=None, **kwargs):
        """Build a processor for new training from its two parts.

        Args:
            vision: a pretrained CLIP name/path (its normalisation is kept) or a `CLIPVisionConfig` (CLIP defaults).
            text: a pretrained GPT-2 tokenizer name/path or a tokenizer object.
            image_size: side of the square input (default: the vision model's `image_size`, 224 for ViT-B/16).
            kwargs: `emotions`, `prompt_text`, `connector_text`, `max_length`.
        """
        if isinstance(vision, (str, os.PathLike)):
            image_processor = AutoImageProcessor.from_pretrained(vision)
            crop = getattr(image_processor, "crop_size", None) or {}
            side = image_size or crop.get("height") or 224
        else:
            from transformers import CLIPImageProcessorPil

            side = image_size or vision.image_size
            image_processor = CLIPImageProcessorPil(image_mean=CLIP_MEAN, image_std=CLIP_STD)
        # Keep the whole painting: resize to a square, no centre crop.
        image_processor.size = {"height": side, "width": side}
        image_processor.crop_size = {"height": side, "width": side}
        image_processor.do_center_crop = False
        image_processor.do_convert_rgb = True
        tokenizer = text if isinstance(text, PreTrainedTokenizerBase) else AutoTokenizer.from_pretrained(text)
        return cls(image_processor=image_processor, tokenizer=tokenizer, **kwargs)

    def _add_special_tokens(self):
        tokenizer = self.tokenizer
        if tokenizer.bos_token is None or tokenizer.eos_token is None:
            raise ValueError("The tokenizer needs a bos and an eos token (GPT-2's `<|endoftext|>`).")
        if tokenizer.pad_token is None or tokenizer.pad_token_id == tokenizer.eos_token_id:
            tokenizer.add_special_tokens({"pad_token": PAD_TOKEN})
        missing = [token for token in (EMOTION_TOKEN, EXPLANATION_TOKEN) if token not in tokenizer.get_vocab()]
        if missing:
            tokenizer.add_tokens(missing, special_tokens=True)
        self.emotion_token_id = tokenizer.convert_tokens_to_ids(EMOTION_TOKEN)
        self.explanation_token_id = tokenizer.convert_tokens_to_ids(EXPLANATION_TOKEN)
        self.prompt_token_ids = self._encode(self.prompt_text)
        self.connector_token_ids = self._encode(self.connector_text)
        self.emotion_token_ids = [self._encode(" " + name) for name in self.emotions]

    def _encode(self, text):
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def token_id_config(self):
        """The tokenizer-dependent fields of `SevlmConfig` for this processor."""
        tokenizer = self.tokenizer
        return {
            "emotions": list(self.emotions),
            "prompt_text": self.prompt_text,
            "connector_text": self.connector_text,
            "emotion_token_id": self.emotion_token_id,
            "explanation_token_id": self.explanation_token_id,
            "prompt_token_ids": list(self.prompt_token_ids),
            "connector_token_ids": list(self.connector_token_ids),
            "emotion_token_ids": [list(ids) for ids in self.emotion_token_ids],
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        }

    # ------------------------------------------------------------------------------------------- encoding
    def __call__(self, images=None, emotions=None, explanations=None, return_tensors="pt", **kwargs):
        """Encode images and, optionally, emotions and explanations (see the class docstring)."""
        if images is None:
            raise ValueError(
                "SevlmProcessor needs `images` (a PIL image, array, path or a list of them). "
                "To encode text alone use `processor.encode_text(...)`."
            )
        if return_tensors != "pt":
            raise ValueError(f"Only return_tensors='pt' is supported, got {return_tensors!r}.")
        images = list(images) if isinstance(images, (list, tuple)) else [images]
        count = len(images)
        if count == 0:
            raise ValueError("`images` is an empty list.")
        if explanations is not None:
            if emotions is None:
                raise ValueError("`explanations` need their `emotions` (one per explanation).")
            text = self.encode_text(_as_list(emotions, count, "emotions"), _as_list(explanations, count, "explanations"))
        elif emotions is not None:
            text = self.encode_prompt(count, _as_list(emotions, count, "emotions"))
        else:
            text = self.encode_prompt(count)
        return BatchFeature({**text, "pixel_values": self.preprocess_images(images, **kwargs)})

    def preprocess_images(self, images, **kwargs):
        """Images (PIL, arrays, tensors or paths, any mode) -> `pixel_values` [N, 3, H, W]."""
        images = images if isinstance(images, (list, tuple)) else [images]
        rgb = [to_rgb_image(image, index) for index, image in enumerate(images)]
        return self.image_processor(rgb, return_tensors="pt", **kwargs)["pixel_values"]

    def emotion_index(self, emotion, row=None):
        """Index of an emotion name in `self.emotions` (case and surrounding spaces ignored)."""
        key = str(emotion).strip().lower()
        for index, name in enumerate(self.emotions):
            if name.lower() == key:
                return index
        where = f" (row {row})" if row is not None else ""
        raise ValueError(f"Unknown emotion {emotion!r}{where}; expected one of {self.emotions}.")

    def encode_text(self, emotions, explanations, max_length=None):
        """Training sequences for (emotion, explanation) pairs: ids, attention mask, token types, labels."""
        if len(emotions) != len(explanations):
            raise ValueError(f"Got {len(emotions)} emotions but {len(explanations)} explanations.")
        max_length = max_length or self.max_length
        for row, explanation in enumerate(explanations):
            if not isinstance(explanation, str) or not explanation.strip():
                raise ValueError(f"Explanation {row} is empty; every training sequence needs an explanation.")
        indices = [self.emotion_index(emotion, row) for row, emotion in enumerate(emotions)]
        bodies = self.tokenizer([" " + text.strip() for text in explanations], add_special_tokens=False)["input_ids"]
        tokenizer = self.tokenizer
        rows = []
        for index, body in zip(indices, bodies):
            head = [tokenizer.bos_token_id, *self.prompt_token_ids, *self.emotion_token_ids[index]]
            tail = [*self.connector_token_ids, *body]
            room = max_length - len(head) - 1  # keep one slot for <eos>
            if room <= len(self.connector_token_ids):
                raise ValueError(f"max_length={max_length} leaves no room for an explanation.")
            rows.append((head, tail[:room] + [tokenizer.eos_token_id]))
        return self._pad(rows, pad_left=False, with_labels=True)

    def encode_prompt(self, count, emotions=None):
        """Generation prompts: `<bos> the emotion is` or, given emotions, `<bos> the emotion is {emotion} because`."""
        tokenizer = self.tokenizer
        head = [tokenizer.bos_token_id, *self.prompt_token_ids]
        if emotions is None:
            return self._pad([(head, [])] * count, pad_left=True, with_labels=False)
        rows = [
            (head + self.emotion_token_ids[self.emotion_index(emotion, row)], list(self.connector_token_ids))
            for row, emotion in enumerate(emotions)
        ]
        return self._pad(rows, pad_left=True, with_labels=False)

    def _pad(self, rows, pad_left, with_labels):
        """rows: (emotion-segment ids, explanation-segment ids). The explanation segment starts at the token
        that completes the connector, so a multi-token connector's first pieces stay in the emotion segment."""
        pad_id = self.tokenizer.pad_token_id
        width = max(len(head) + len(tail) for head, tail in rows)
        joined = {"input_ids": [], "attention_mask": [], "token_type_ids": [], "labels": []}
        split = len(self.connector_token_ids) - 1  # connector pieces before its last token
        for head, tail in rows:
            ids = head + tail
            cut = len(head) + split if tail else len(ids)
            types = [self.emotion_token_id] * cut + [self.explanation_token_id] * (len(ids) - cut)
            labels = [IGNORE_INDEX] + ids[1:]
            missing = width - len(ids)
            if pad_left:
                joined["input_ids"].append([pad_id] * missing + ids)
                joined["attention_mask"].append([0] * missing + [1] * len(ids))
                joined["token_type_ids"].append([self.emotion_token_id] * missing + types)
                joined["labels"].append([IGNORE_INDEX] * missing + labels)
            else:
                joined["input_ids"].append(ids + [pad_id] * missing)
                joined["attention_mask"].append([1] * len(ids) + [0] * missing)
                joined["token_type_ids"].append(types + [self.explanation_token_id] * missing)
                joined["labels"].append(labels + [IGNORE_INDEX] * missing)
        if not with_labels:
            del joined["labels"]
        return {key: torch.tensor(value, dtype=torch.long) for key, value in joined.items()}

    # -------------------------------------------------------------------------------------------- decoding
    def post_process_generation(self, sequences):
        """Generated ids (with or without the prompt) -> `[{"emotion": str, "explanation": str}, ...]`."""
        if isinstance(sequences, torch.Tensor):
            sequences = sequences.tolist()
        tokenizer = self.tokenizer
        skip = {tokenizer.pad_token_id, tokenizer.bos_token_id, self.emotion_token_id, self.explanation_token_id}
        results = []
        for row in sequences:
            ids = list(row)
            while ids and ids[0] in skip:
                ids.pop(0)
            if ids[: len(self.prompt_token_ids)] == self.prompt_token_ids:
                ids = ids[len(self.prompt_token_ids) :]
            if tokenizer.eos_token_id in ids:
                ids = ids[: ids.index(tokenizer.eos_token_id)]
            cut = _find(ids, self.connector_token_ids)
            emotion_ids, explanation_ids = (ids, []) if cut < 0 else (ids[:cut], ids[cut + len(self.connector_token_ids) :])
            results.append(
                {
                    "emotion": tokenizer.decode(emotion_ids, skip_special_tokens=True).strip(),
                    "explanation": tokenizer.decode(explanation_ids, skip_special_tokens=True).strip(),
                }
            )
        return results

    def batch_decode(self, *args, **kwargs):
        return self.tokenizer.batch_decode(*args, **kwargs)

    def decode(self, *args, **kwargs):
        return self.tokenizer.decode(*args, **kwargs)

    @property
    def model_input_names(self):
        return ["input_ids", "attention_mask", "token_type_ids", "pixel_values"]


def _as_list(values, count, name):
    values = [values] if isinstance(values, str) else list(values)
    if len(values) != count:
        raise ValueError(f"Got {count} images but {len(values)} {name}.")
    return values


def _find(ids, pattern):
    """First index where `pattern` starts in `ids`, or -1."""
    width = len(pattern)
    for start in range(len(ids) - width + 1):
        if ids[start : start + width] == pattern:
            return start
    return -1


SevlmProcessor.register_for_auto_class("AutoProcessor")

__all__ = ["SevlmProcessor", "to_rgb_image", "train_tokenizer"]
