"""The `art-emotion` pipeline: a painting in, its emotion, the score of every emotion and an explanation out.

    from transformers import pipeline

    pipe = pipeline("art-emotion", model="outputs/sevlm-demo", trust_remote_code=True)
    pipe("painting.jpg")
    # {"emotion": "awe", "score": 0.71, "scores": {"amusement": 0.01, "awe": 0.71, ...}, "explanation": "..."}
    pipe(["a.jpg", "b.png"], batch_size=8)            # one dict per image
    pipe("painting.jpg", emotion="sadness")           # explain a given emotion instead of the predicted one
    pipe("painting.jpg", num_beams=3, max_new_tokens=20)  # any generate() option

This file travels with every saved SEVLM folder (as remote code, next to `modeling_sevlm.py`): it imports only
transformers and torch, and `add_pipeline_to_folder` registers it in a folder's `config.json`.
"""

import json
import os
import shutil
from pathlib import Path

import torch
from transformers import AutoModel, GenerationConfig, Pipeline
from transformers.pipelines import PIPELINE_REGISTRY

TASK = "art-emotion"
PIPELINE_FILE = "pipeline_sevlm.py"
# `generate()` arguments that are not GenerationConfig fields.
GENERATE_ARGUMENTS = {
    "generation_config",
    "logits_processor",
    "stopping_criteria",
    "prefix_allowed_tokens_fn",
    "synced_gpus",
    "assistant_model",
    "streamer",
    "negative_prompt_ids",
    "negative_prompt_attention_mask",
    "use_model_defaults",
    "custom_generate",
    "tokenizer",
}


class SevlmArtEmotionPipeline(Pipeline):
    """Emotion and explanation for paintings with a SEVLM model (task `art-emotion`).

    Call it with one image or a list of images: PIL images, numpy arrays (HxW, HxWx3, HxWx4), torch tensors or
    file paths, in any colour mode; or dicts `{"image": ..., "emotion": ...}` to give each image its own emotion.
    Each image gives

        {"emotion": str, "score": float, "scores": {emotion: probability, ...}, "explanation": str}

    - `scores`: the model's probability of every class, in `model.config.emotions` order (they sum to 1).
      Each class is scored by how likely the model finds `the emotion is {emotion} because` for this image
      (`model.emotion_scores`).
    - `emotion`: the predicted emotion, the class with the highest score (always one of the classes), or the
      `emotion=` you asked for.
    - `score`: `scores[emotion]`. With `emotion=` given it is the model's own probability of that emotion, so a
      low value says the model would not have chosen it.
    - `explanation`: generated after the prompt `the emotion is {emotion} because`, so it always explains the
      emotion shown next to it.

    The predicted emotion is decided by the scores rather than by free generation, so that `emotion`, `score`
    and `explanation` agree and `emotion` is always a valid class. With greedy decoding the emotion the model
    writes freely (what `model.generate(pixel_values=...)` and eval_sevlm.py's accuracy use) is almost always
    the same class; it can differ when two classes score close, because free generation picks the first token
    greedily while the scores weigh the whole name and "because".

    Parameters (at creation, `pipeline(..., emotion=..., max_new_tokens=...)`, or per call):
        emotion (`str`, *optional*): explain this emotion (one of `model.config.emotions`) for every image.
        batch_size (`int`, *optional*, defaults to 1): images encoded and generated together.
        generate_kwargs (`dict`, *optional*) or keyword arguments: `generate()` options (`max_new_tokens`,
            `num_beams`, `do_sample`, `temperature`, `top_p`, ...). Defaults: the model's generation config
            (greedy, 25 new tokens).

    Each image is read once and encoded once: the image features feed both the scores and the generation.
    """

    _load_processor = True
    _load_tokenizer = False
    _load_image_processor = False
    _load_feature_extractor = False
    _load_video_processor = False

    def __init__(self, model, processor=None, **kwargs):
        if processor is None or not hasattr(processor, "post_process_generation"):
            raise ValueError(
                "The art-emotion pipeline needs the model's SevlmProcessor: pass "
                "processor=AutoProcessor.from_pretrained(MODEL_DIR, trust_remote_code=True)."
            )
        emotions = list(getattr(model.config, "emotions", []) or [])
        if list(processor.emotions) != emotions:
            raise ValueError(
                f"The processor's emotions {list(processor.emotions)} differ from the model's {emotions}: "
                "load both from the same folder."
            )
        super().__init__(model=model, processor=processor, **kwargs)

    @property
    def emotions(self):
        return list(self.model.config.emotions)

    def __call__(self, images, **kwargs):
        """Emotion, scores and explanation for one image (a dict) or a list of images (a list of dicts).

        Args:
            images: a PIL image, numpy array, torch tensor, file path, `{"image": ..., "emotion": ...}`, or a list
                of them.
            emotion (`str`, *optional*): explain this emotion instead of the predicted one.
            batch_size (`int`, *optional*): images per forward pass.
            kwargs: `generate()` options (`max_new_tokens`, `num_beams`, `do_sample`, ...).
        """
        if isinstance(images, tuple):
            images = list(images)
        if isinstance(images, list) and not images:
            return []
        return super().__call__(images, **kwargs)

    def _sanitize_parameters(self, emotion=None, generate_kwargs=None, **kwargs):
        preprocess_params = {}
        if emotion is not None:
            self.processor.emotion_index(emotion)  # fail now, with the list of classes, not inside a batch
            preprocess_params["emotion"] = emotion
        known = GENERATE_ARGUMENTS | set(vars(GenerationConfig()))
        unknown = sorted(key for key in kwargs if key not in known)
        if unknown:
            raise TypeError(
                f"Unknown argument(s) {unknown} for the art-emotion pipeline. It takes `emotion=`, `batch_size=` and "
                "generate() options such as max_new_tokens, num_beams, do_sample, temperature, top_p."
            )
        # Options given at creation stay in force unless a call overrides them.
        merged = dict(getattr(self, "_forward_params", {}).get("generate_kwargs", {}))
        merged.update(generate_kwargs or {})
        merged.update(kwargs)
        if merged.get("num_return_sequences", 1) != 1:
            raise ValueError("The art-emotion pipeline returns one explanation per image: drop `num_return_sequences`.")
        return preprocess_params, {"generate_kwargs": merged}, {}

    def preprocess(self, image, emotion=None):
        if isinstance(image, dict):
            if "image" not in image:
                raise ValueError(f"An input dict needs an 'image' key (and optionally 'emotion'); got keys {sorted(image)}.")
            emotion = image.get("emotion", emotion)
            image = image["image"]
        index = -1 if emotion is None else self.processor.emotion_index(emotion)
        return {
            "pixel_values": self.processor.preprocess_images([image]),
            "emotion_index": torch.tensor([index], dtype=torch.long),
        }

    def _forward(self, model_inputs, generate_kwargs=None):
        model = self.model
        features = model.get_image_features(model_inputs["pixel_values"])
        scores = model.emotion_scores(encoder_hidden_states=features)
        asked = model_inputs["emotion_index"].to(scores.device)
        index = torch.where(asked >= 0, asked, scores.argmax(-1))
        names = [self.emotions[i] for i in index.tolist()]
        prompt = self.processor.encode_prompt(len(names), names)
        sequences = model.generate(
            input_ids=prompt["input_ids"].to(features.device),
            attention_mask=prompt["attention_mask"].to(features.device),
            encoder_hidden_states=features,
            **(generate_kwargs or {}),
        )
        if not isinstance(sequences, torch.Tensor):  # return_dict_in_generate=True
            sequences = sequences.sequences
        return {"scores": scores.float(), "emotion_index": index, "sequences": sequences}

    def postprocess(self, model_outputs):
        scores = model_outputs["scores"][0].tolist()
        index = int(model_outputs["emotion_index"][0])
        decoded = self.processor.post_process_generation(model_outputs["sequences"])[0]
        return {
            "emotion": self.emotions[index],
            "score": scores[index],
            "scores": dict(zip(self.emotions, scores)),
            "explanation": decoded["explanation"],
        }

    def save_pretrained(self, save_directory, **kwargs):
        """Save a complete SEVLM folder: model, processor, and this pipeline (see `add_pipeline_to_folder`)."""
        self.model.save_pretrained(save_directory, **kwargs)
        self.processor.save_pretrained(save_directory)
        return add_pipeline_to_folder(save_directory)


def pipeline_config_entry():
    """The `custom_pipelines` entry of config.json, in the format `Pipeline.save_pretrained` writes."""
    return {TASK: {"impl": f"{Path(PIPELINE_FILE).stem}.{SevlmArtEmotionPipeline.__name__}", "pt": ["AutoModel"], "type": "multimodal"}}


def add_pipeline_to_folder(folder):
    """Make `pipeline("art-emotion", model=folder, trust_remote_code=True)` work for a saved SEVLM folder.

    Writes `custom_pipelines` into the folder's config.json and copies this file next to the model code.
    Returns the folder as a `Path`.
    """
    folder = Path(folder)
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{folder} has no config.json: save the model there first (model.save_pretrained).")
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["custom_pipelines"] = pipeline_config_entry()
    temporary = config_path.with_name(config_path.name + ".tmp")
    temporary.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(temporary, config_path)
    source, target = Path(__file__).resolve(), (folder / PIPELINE_FILE).resolve()
    if source != target:
        shutil.copyfile(source, target)
    return folder


# Register the task for in-process use, e.g. `pipeline("art-emotion", model=model, processor=processor)`. When the
# task is already registered (this file imported both locally and as a folder's remote code) the first
# registration stays, without the registry's overwrite warning.
if TASK in PIPELINE_REGISTRY.supported_tasks:
    SevlmArtEmotionPipeline._registered_impl = {TASK: {"impl": SevlmArtEmotionPipeline, "pt": (AutoModel,), "type": "multimodal"}}
else:
    PIPELINE_REGISTRY.register_pipeline(TASK, pipeline_class=SevlmArtEmotionPipeline, pt_model=AutoModel, type="multimodal")

__all__ = ["SevlmArtEmotionPipeline", "add_pipeline_to_folder", "pipeline_config_entry"]
