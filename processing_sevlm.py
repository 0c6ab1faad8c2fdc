"""SEVLM processor: CLIP image preprocessing + GPT-2 style tokenisation of `<bos> the emotion is {emotion} because {explanation} <eos>`,
and `load_image`, the one image loader of training data preparation and inference."""

import io
import os

import numpy as np
import torch
from PIL import Image, ImageOps
from transformers import AutoImageProcessor, AutoTokenizer, PreTrainedTokenizerBase, ProcessorMixin
from transformers.feature_extraction_utils import BatchFeature

try:
    from .configuration_sevlm import ARTEMIS_EMOTIONS, IGNORE_INDEX, SevlmConfig, SevlmSequenceFormat, emotion_key
except ImportError:
    from configuration_sevlm import ARTEMIS_EMOTIONS, IGNORE_INDEX, SevlmConfig, SevlmSequenceFormat, emotion_key

PAD_TOKEN = "<pad>"
EMOTION_TOKEN = "<emotion>"
EXPLANATION_TOKEN = "<explanation>"
# CLIP's normalisation constants (openai/clip-vit-*), used when no pretrained image processor is given.
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
EXIF_ORIENTATION = 0x0112
# A decoded image keeps at most this many pixels on its long side (the model sees a few hundred): a huge scan or a
# hostile file (a 300 KB PNG of 13000 x 13000 16-bit pixels) then costs bounded memory after decoding.
LARGEST_SIDE = 4096
# A JPEG much larger than the model's input decodes at a reduced scale (1/2, 1/4, 1/8) that keeps at least this many
# times the input size: ten times faster for a camera photo, and the resize to the input barely changes.
DRAFT_MARGIN = 2


# ------------------------------------------------------------------------------------------------ images
def load_image(source, index=0, draft_size=None):
    """Return `source` as an upright RGB PIL image: the one image loader of data preparation, training and inference.

    Args:
        source: a file path, raw file bytes or a binary file object, a PIL image, a numpy array (HxW, HxWx3, HxWx4,
            or channels first) or a torch tensor.
        index: the image's position in its batch, used in error messages.
        draft_size (`(width, height)`, *optional*): let a JPEG decoder run at a reduced scale (1/2, 1/4 or 1/8) that
            still gives at least this size; much faster when the image is resized down afterwards.

    The EXIF orientation is applied (a camera photo of a painting comes out upright); 16-bit images are scaled to 8 bits
    (65535 -> 255); transparency is composited on white; palette, CMYK, grayscale and 1-bit images are converted. A
    file larger than `LARGEST_SIDE` pixels on its long side is shrunk to it right after decoding (box filter; JPEGs
    decode at a reduced scale), before any conversion.
    An unreadable file, or one larger than PIL's decompression-bomb limit (`PIL.Image.MAX_IMAGE_PIXELS`), raises a
    `ValueError` that names it.
    """
    if isinstance(source, (str, os.PathLike)):
        return _read_image(source, f"Image {index} ({printable_path(source)})", draft_size)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _read_image(io.BytesIO(bytes(source)), f"Image {index} (bytes)", draft_size)
    if hasattr(source, "read"):
        return _read_image(source, f"Image {index} ({printable_path(getattr(source, 'name', 'file object'))})", draft_size)
    if isinstance(source, torch.Tensor):
        source = source.detach().cpu().numpy()
    if isinstance(source, np.ndarray):
        return _to_rgb(_array_to_pil(source, index), f"Image {index}")
    if isinstance(source, Image.Image):
        return _to_rgb(ImageOps.exif_transpose(source), f"Image {index}")
    raise TypeError(
        f"Image {index} has type {type(source).__name__}; pass a PIL image, a numpy array (HxW, HxWx3 or HxWx4), "
        "a torch tensor, a file path or the file's bytes."
    )


def printable_path(path):
    """A file name that can always be printed and written as UTF-8 (undecodable bytes become `\\udcXX` escapes)."""
    return os.fsdecode(path).encode("utf-8", "backslashreplace").decode("utf-8")


def _read_image(file, name, draft_size):
    try:
        with Image.open(file) as opened:
            if opened.format == "JPEG":
                width, height = draft_size or (LARGEST_SIDE, LARGEST_SIDE)
                if opened.getexif().get(EXIF_ORIENTATION) in (5, 6, 7, 8):  # stored sideways: the draft is too
                    width, height = height, width
                opened.draft(opened.mode, (width, height))
            opened.load()
            return _to_rgb(ImageOps.exif_transpose(_bounded(opened)), name)
    except Image.DecompressionBombError as error:
        raise ValueError(
            f"{name} is too large to decode safely ({error}). If the file is trusted, raise "
            "PIL.Image.MAX_IMAGE_PIXELS before loading it."
        ) from error
    except ValueError as error:
        if str(error).startswith(name):
            raise
        raise ValueError(f"{name} cannot be read: {error}") from error
    except Exception as error:  # PIL raises OSError, SyntaxError, struct.error, EOFError ... for broken files
        raise ValueError(f"{name} cannot be read: {error}") from error


def _bounded(image):
    """`image` with its long side shrunk to `LARGEST_SIDE` (box filter, which every mode supports, 16-bit included)."""
    side = max(image.size)
    if side <= LARGEST_SIDE:
        return image
    size = tuple(max(1, round(length * LARGEST_SIDE / side)) for length in image.size)
    resample = Image.Resampling.NEAREST if image.mode in ("P", "1") else Image.Resampling.BOX
    return image.resize(size, resample)


def _to_rgb(image, name):
    """Any PIL mode -> RGB: 16-bit and float scaled to 8 bits, transparency on white."""
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        array = np.asarray(image)
        if image.mode.startswith("I;16") or array.max(initial=0) > 255:
            # 16-bit: 65535 -> 255, rounded, in integers (a float64 copy of a large scan is 8 bytes a pixel).
            array = (array.astype(np.uint32) * 255 + 32767) // 65535
        image = Image.fromarray(np.clip(array, 0, 255).astype(np.uint8))
    elif image.mode == "F":
        array = np.asarray(image, dtype=np.float32)
        if array.max(initial=0) <= 1.0:
            array = array * 255.0  # floats in [0, 1]
        image = Image.fromarray(np.clip(np.round(array), 0, 255).astype(np.uint8))
    if image.mode in ("P", "L", "RGB") and "transparency" in image.info:
        image = image.convert("RGBA")
    try:
        if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
            background = Image.new("RGBA", image.size, (255, 255, 255, 255))
            return Image.alpha_composite(background, image.convert("RGBA")).convert("RGB")
        return image if image.mode == "RGB" else image.convert("RGB")
    except ValueError as error:
        raise ValueError(f"{name}: colour mode {image.mode} cannot be converted to RGB ({error}).") from error


def _array_to_pil(array, index):
    if array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[-1] not in (1, 3, 4):
        array = array.transpose(1, 2, 0)  # channels-first -> channels-last
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (3, 4)):
        raise ValueError(f"Image {index}: array of shape {array.shape} is not HxW, HxWx3 or HxWx4.")
    if array.dtype == np.bool_:
        array = array.astype(np.uint8) * 255
    elif array.dtype == np.uint16:
        array = np.round(array / 257.0)  # 16-bit: 65535 -> 255
    elif np.issubdtype(array.dtype, np.floating) and array.max(initial=0) <= 1.0:
        array = array * 255.0  # floats in [0, 1]
    if array.dtype != np.uint8:
        array = np.clip(array, 0, 255).astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(array))


# ------------------------------------------------------------------------------------------ saved folders
def _sevlm_config_beside(folder):
    """The SEVLM model config saved in the same local folder, if there is one."""
    if not os.path.isfile(os.path.join(folder, "config.json")):
        return None
    try:
        config = SevlmConfig.from_pretrained(folder)
    except (OSError, ValueError):
        return None
    return config if getattr(config, "model_type", None) == SevlmConfig.model_type else None


# ------------------------------------------------------------------------------------------- explanations
def explanation_ids(tokenizer, texts):
    """Token ids of explanations as they stand in a training sequence after the connector: a leading space, surrounding
    spaces removed, no special tokens. The one encoding of an explanation: training, evaluation (VAD profiles) and the
    search index's text queries use it."""
    texts = [" " + str(text).strip() for text in texts]
    return tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []


# ---------------------------------------------------------------------------------------------- processor
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

    The sequences follow `SevlmSequenceFormat` (in configuration_sevlm.py), the same code the model uses; the
    model's config is the source of truth, and `check_config(config)` says where a processor differs from it.
    Images are read by `load_image` and keep the whole painting: they are resized to a square (no centre crop).

    Args:
        image_processor: a CLIP image processor.
        tokenizer: a GPT-2 style tokenizer; `<pad>`, `<emotion>` and `<explanation>` are added when missing.
        emotions (`list[str]`, *optional*): class names in index order (default: the 9 ArtEmis classes). Any names:
            several words, several tokens, any script.
        prompt_text (`str`, defaults to `" the emotion is"`), connector_text (`str`, defaults to `" because"`).
        max_length (`int`, defaults to 30): longest training sequence, in tokens; at least `min_max_length`.
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
        self.prompt_text = prompt_text
        self.connector_text = connector_text
        self._add_special_tokens()
        self.sequence_format = SevlmSequenceFormat(
            emotions=list(emotions) if emotions is not None else list(ARTEMIS_EMOTIONS),
            bos_token_id=self.tokenizer.bos_token_id,
            eos_token_id=self.tokenizer.eos_token_id,
            pad_token_id=self.tokenizer.pad_token_id,
            emotion_token_id=self.tokenizer.convert_tokens_to_ids(EMOTION_TOKEN),
            explanation_token_id=self.tokenizer.convert_tokens_to_ids(EXPLANATION_TOKEN),
            prompt_token_ids=self._encode(prompt_text),
            connector_token_ids=self._encode(connector_text),
            emotion_token_ids=[self._encode(" " + name.strip()) for name in (emotions or ARTEMIS_EMOTIONS)],
        )
        self.max_length = max_length

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

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        """Load a saved processor. When the folder also holds the model's config.json, the processor must agree with
        it (the error names the fields that differ)."""
        processor = super().from_pretrained(pretrained_model_name_or_path, **kwargs)
        config = _sevlm_config_beside(pretrained_model_name_or_path)
        if config is not None and config.has_token_ids:
            processor.check_config(config, where=f" in {printable_path(pretrained_model_name_or_path)}")
        return processor

    @classmethod
    def _load_tokenizer_from_pretrained(cls, sub_processor_type, pretrained_model_name_or_path, subfolder="", **kwargs):
        # Give AutoTokenizer the config itself: otherwise it reads config.json through AutoConfig, which asks whether to
        # run this very file as remote code and warns about the `sevlm` model type. ProcessorMixin offers no public
        # hook for this (transformers 5.2x): this override of its private loader is the one place that needs it.
        if "config" not in kwargs:
            kwargs["config"] = _sevlm_config_beside(pretrained_model_name_or_path) or SevlmConfig()
        return super()._load_tokenizer_from_pretrained(
            sub_processor_type, pretrained_model_name_or_path, subfolder=subfolder, **kwargs
        )

    def _add_special_tokens(self):
        tokenizer = self.tokenizer
        if tokenizer.bos_token is None or tokenizer.eos_token is None:
            raise ValueError("The tokenizer needs a bos and an eos token (GPT-2's `<|endoftext|>`).")
        if tokenizer.pad_token is None or tokenizer.pad_token_id == tokenizer.eos_token_id:
            tokenizer.add_special_tokens({"pad_token": PAD_TOKEN})
        missing = [token for token in (EMOTION_TOKEN, EXPLANATION_TOKEN) if token not in tokenizer.get_vocab()]
        if missing:
            tokenizer.add_tokens(missing, special_tokens=True)

    def _encode(self, text):
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def to_dict(self):
        output = super().to_dict()
        output.update(emotions=self.emotions, max_length=self.max_length)
        output.pop("sequence_format", None)
        return output

    # ------------------------------------------------------------------------------------- the format
    @property
    def emotions(self):
        """Class names, in index order."""
        return list(self.sequence_format.emotions)

    @property
    def max_length(self):
        """Longest training sequence, in tokens."""
        return self._max_length

    @max_length.setter
    def max_length(self, value):
        self._max_length = self._checked_max_length(value)

    @property
    def min_max_length(self):
        """The smallest `max_length` that fits `<bos>`, the prompt, the longest emotion, the connector, one
        explanation token and `<eos>`."""
        return self.sequence_format.min_max_length

    def _checked_max_length(self, value):
        if not isinstance(value, int) or isinstance(value, bool) or value < self.min_max_length:
            raise ValueError(self.sequence_format.max_length_error(value))
        return value

    @property
    def emotion_token_id(self):
        return self.sequence_format.emotion_token_id

    @property
    def explanation_token_id(self):
        return self.sequence_format.explanation_token_id

    @property
    def prompt_token_ids(self):
        return list(self.sequence_format.prompt_token_ids)

    @property
    def connector_token_ids(self):
        return list(self.sequence_format.connector_token_ids)

    @property
    def emotion_token_ids(self):
        return [list(ids) for ids in self.sequence_format.emotion_token_ids]

    def token_id_config(self):
        """The tokenizer-dependent fields of `SevlmConfig` for this processor (what `from_vision_text` writes)."""
        fields = self.sequence_format.to_dict()
        return {**fields, "prompt_text": self.prompt_text, "connector_text": self.connector_text}

    def check_config(self, config, where=""):
        """Raise a `ValueError` naming the fields in which this processor's sequences differ from the model's config."""
        # Built here from the config's fields, so that a config of an older saved folder is read the same way.
        differences = self.sequence_format.differences(SevlmSequenceFormat.from_config(config))
        if differences:
            raise ValueError(
                f"The processor{where} does not match the model's config: they differ in {', '.join(differences)}. "
                "Load the processor from the model's own folder (AutoProcessor.from_pretrained(model_folder)), or "
                "save the training processor there with processor.save_pretrained(model_folder)."
            )

    def emotion_index(self, emotion, row=None):
        """Index of an emotion name in `self.emotions`, compared by `emotion_key` (Unicode normal form, case, `_`
        for a space and extra spaces ignored)."""
        key = emotion_key(emotion)
        for index, name in enumerate(self.emotions):
            if emotion_key(name) == key:
                return index
        where = f" (row {row})" if row is not None else ""
        raise ValueError(f"Unknown emotion {emotion!r}{where}; expected one of {self.emotions}.")

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
        """Images (anything `load_image` reads) -> `pixel_values` [N, 3, H, W]."""
        images = images if isinstance(images, (list, tuple)) else [images]
        draft = self.draft_size()
        rgb = [load_image(image, index, draft_size=draft) for index, image in enumerate(images)]
        return self.image_processor(rgb, return_tensors="pt", **kwargs)["pixel_values"]

    def draft_size(self):
        """The smallest `(width, height)` a JPEG may be decoded at: `DRAFT_MARGIN` times the model's input (training's
        loader reads images the same way)."""
        size = getattr(self.image_processor, "size", None) or {}
        width, height = size.get("width"), size.get("height")
        if not (width and height):
            width = height = size.get("shortest_edge")
        return (DRAFT_MARGIN * width, DRAFT_MARGIN * height) if width and height else None

    def encode_text(self, emotions, explanations, max_length=None):
        """Training sequences for (emotion, explanation) pairs: ids, attention mask, token types, labels."""
        if len(emotions) != len(explanations):
            raise ValueError(f"Got {len(emotions)} emotions but {len(explanations)} explanations.")
        max_length = self.max_length if max_length is None else self._checked_max_length(max_length)
        for row, explanation in enumerate(explanations):
            if not isinstance(explanation, str) or not explanation.strip():
                raise ValueError(f"Explanation {row} is empty; every training sequence needs an explanation.")
        indices = [self.emotion_index(emotion, row) for row, emotion in enumerate(emotions)]
        bodies = explanation_ids(self.tokenizer, explanations)
        rows = [self.sequence_format.training_ids(index, body, max_length) for index, body in zip(indices, bodies)]
        return self.sequence_format.batch(rows, padding_side="right", with_labels=True)

    def encode_prompt(self, count, emotions=None):
        """Generation prompts, left-padded: `<bos> the emotion is`, or `<bos> the emotion is {emotion} because` for
        rows with an emotion (`emotions`: one name or None per row)."""
        if emotions is None:
            emotions = [None] * count
        if len(emotions) != count:
            raise ValueError(f"Got {count} prompts but {len(emotions)} emotions.")
        rows = [
            self.sequence_format.prompt(None if emotion is None else self.emotion_index(emotion, row))
            for row, emotion in enumerate(emotions)
        ]
        return self.sequence_format.batch(rows, padding_side="left")

    # -------------------------------------------------------------------------------------------- decoding
    def post_process_generation(self, sequences):
        """Generated ids (with or without the prompt) -> `[{"emotion": str, "explanation": str}, ...]`."""
        if isinstance(sequences, torch.Tensor):
            sequences = sequences.tolist()
        results = []
        for row in sequences:
            emotion_ids, explanation_ids = self.sequence_format.split_generated(row)
            results.append(
                {
                    "emotion": self.tokenizer.decode(emotion_ids, skip_special_tokens=True).strip(),
                    "explanation": self.tokenizer.decode(explanation_ids, skip_special_tokens=True).strip(),
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
    values = [values] if isinstance(values, str) or values is None else list(values)
    if len(values) != count:
        raise ValueError(f"Got {count} images but {len(values)} {name}.")
    return values


SevlmProcessor.register_for_auto_class("AutoProcessor")

__all__ = ["IGNORE_INDEX", "SevlmProcessor", "explanation_ids", "load_image", "printable_path"]
