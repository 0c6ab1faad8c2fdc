"""The `art-emotion` pipeline and `predict_batch`, the one prediction path of SEVLM: a painting in, its emotion, the
score of every emotion and an explanation out.

    from transformers import pipeline

    pipe = pipeline("art-emotion", model="outputs/sevlm-demo", trust_remote_code=True)
    pipe("painting.jpg")
    # {"emotion": "awe", "score": 0.71, "scores": {"amusement": 0.01, "awe": 0.71, ...}, "explanation": "..."}
    pipe(["a.jpg", "b.png"], batch_size=8)            # one dict per image
    pipe("painting.jpg", emotion="sadness")           # explain a given emotion instead of the predicted one
    pipe("painting.jpg", emotion_source="generation") # the emotion the model writes freely (the paper's protocol)
    pipe("painting.jpg", return_attention_map=True)   # + "attention_map": where the explanation looked
    pipe("painting.jpg", num_beams=3, max_new_tokens=20)  # any generate() option
    pipe(images, batch_size=32, compile=True)         # compiled decoding (static cache + torch.compile), same tokens

    from pipeline_sevlm import predict_batch          # the same, as a batched function
    predict_batch(model, processor, ["a.jpg", "b.png"], return_image_embeds=True)

This file travels with every saved SEVLM folder (as remote code, next to `modeling_sevlm.py`): it imports only
transformers and torch; `model.save_pretrained(folder)` registers it in the folder's `config.json` and copies it
beside the model code.
"""

from pathlib import Path

import torch
from transformers import AutoModel, GenerationConfig, Pipeline
from transformers.pipelines import PIPELINE_REGISTRY

try:
    from .configuration_sevlm import emotion_key
except ImportError:
    from configuration_sevlm import emotion_key

TASK = "art-emotion"
PIPELINE_FILE = "pipeline_sevlm.py"
EMOTION_SOURCES = ("scores", "generation")
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


def predict_batch(
    model,
    processor,
    images=None,
    *,
    pixel_values=None,
    emotions=None,
    emotion_source="scores",
    return_image_embeds=False,
    return_attention_map=False,
    generate_kwargs=None,
    compile=False,
):
    """Emotion, scores and explanation for a batch of images: the prediction path of the pipeline, evaluation,
    training-time evaluation, `sevlm-predict` and the search index.

    Args:
        model: a `SevlmForConditionalGeneration`; its train/eval mode is left as it is (call `model.eval()` first
            for deterministic predictions).
        processor: its `SevlmProcessor` (checked against `model.config`).
        images: a list of anything `load_image` reads (paths, PIL images, arrays, tensors, bytes), or
        pixel_values (`torch.FloatTensor` `(N, 3, H, W)`): already preprocessed images, instead of `images`.
        emotions: None, or one entry per image: a class name to explain for that image, or None.
        emotion_source: `"scores"` (default): the emotion is the best class of `model.emotion_scores` and the
            explanation is generated after `<bos> the emotion is {emotion} because`. `"generation"`: free generation
            from `<bos> the emotion is`, the paper's protocol: the emotion is the text before the connector (it may be
            outside the classes) and the explanation the text after it. Scores are computed in both modes.
        return_image_embeds: add `"image_embeds"`, the image's pooled vector (`get_image_features(...).pooler_output`,
            1-D float32 on the CPU).
        return_attention_map: add `"attention_map"`, rows x cols floats in [0, 1] over the vision tower's patch
            grid (row-major, as the painting is seen after resizing): the cross-attention of the decoder positions
            that wrote the explanation (each explanation token and the closing `<eos>` is written at the position
            before it), averaged over layers, heads and those positions, then divided by its maximum (the
            most-looked-at patch is 1; all zeros when nothing was written after the connector).
        generate_kwargs: `generate()` options (`max_new_tokens`, `num_beams`, `do_sample`, ...).
        compile: decode with a static KV cache and the decoding step compiled by `torch.compile` (see
            `compiled_generate_kwargs`): `True` for transformers' settings (inductor, CUDA graphs on a GPU), or a
            `transformers.CompileConfig`. The tokens are the eager ones. It pays on a GPU, where eager decoding of
            small batches waits on operator launches; the first call for each batch size compiles (tens of seconds).

    Returns:
        One dict per image: `{"emotion": str, "score": float | None, "scores": {name: probability}, "explanation": str}`
        (+ `"image_embeds"`, `"attention_map"` when asked). `scores` follows `model.config.emotions`; `score` is
        `scores[emotion]`, None when a freely generated emotion is not one of the classes.

    The images are encoded once: the features feed the scores, the generation and the attention map. Runs under
    `torch.no_grad()` with the inputs on the model's device and dtype.
    """
    if emotion_source not in EMOTION_SOURCES:
        raise ValueError(f"emotion_source must be one of {EMOTION_SOURCES}, got {emotion_source!r}.")
    _check_processor(model, processor)
    if (images is None) == (pixel_values is None):
        raise ValueError("predict_batch needs either `images` or `pixel_values`.")
    if pixel_values is None:
        pixel_values = processor.preprocess_images(list(images))
    count = pixel_values.shape[0]
    emotions = [None] * count if emotions is None else list(emotions)
    if len(emotions) != count:
        raise ValueError(f"Got {count} images but {len(emotions)} emotions.")
    names = list(model.config.emotions)
    asked = [None if emotion is None else processor.emotion_index(emotion, row) for row, emotion in enumerate(emotions)]
    generate_kwargs = dict(generate_kwargs or {})
    if generate_kwargs.get("num_return_sequences", 1) != 1:
        raise ValueError("predict_batch returns one explanation per image: drop `num_return_sequences`.")
    if compile:
        generate_kwargs = compiled_generate_kwargs(model, generate_kwargs, compile)

    with torch.no_grad():
        features = model.get_image_features(pixel_values, return_dict=True)
        memory = features.last_hidden_state
        scores = model.emotion_scores(encoder_hidden_states=memory).float().cpu()
        if emotion_source == "scores":
            asked = [int(scores[row].argmax()) if index is None else index for row, index in enumerate(asked)]
        prompt = processor.encode_prompt(count, [None if index is None else names[index] for index in asked])
        sequences = model.generate(
            input_ids=prompt["input_ids"].to(memory.device),
            attention_mask=prompt["attention_mask"].to(memory.device),
            encoder_hidden_states=memory,
            **generate_kwargs,
        )
        if not isinstance(sequences, torch.Tensor):  # return_dict_in_generate=True
            sequences = sequences.sequences
        maps = _attention_maps(model, sequences, memory) if return_attention_map else None

    lookup = {emotion_key(name): name for name in names}
    results = []
    for row, decoded in enumerate(processor.post_process_generation(sequences)):
        emotion = names[asked[row]] if asked[row] is not None else lookup.get(emotion_key(decoded["emotion"]), decoded["emotion"])
        row_scores = dict(zip(names, scores[row].tolist()))
        result = {
            "emotion": emotion,
            "score": row_scores.get(emotion),
            "scores": row_scores,
            "explanation": decoded["explanation"],
        }
        if return_image_embeds:
            result["image_embeds"] = features.pooler_output[row].detach().float().cpu()
        if maps is not None:
            result["attention_map"] = maps[row]
        results.append(result)
    return results


def compiled_generate_kwargs(model, generate_kwargs=None, compile=True):
    """`generate()` options for compiled decoding: a static KV cache, and the decoding step compiled with
    `torch.compile` on any device (`generate` compiles by itself only on accelerators).

    `compile`: True (a full graph, static shapes, transformers' default backend and mode: inductor, CUDA graphs on
    a GPU) or a `transformers.CompileConfig`. The cache is sized for the longest prompt (any emotion) plus
    `max_new_tokens`, so that batches with other emotions reuse the compiled step; each new batch size compiles once.
    """
    from transformers import CompileConfig

    options = dict(generate_kwargs or {})
    if options.get("cache_implementation", "static") != "static":
        raise ValueError(f"Compiled decoding uses a static cache; drop cache_implementation={options['cache_implementation']!r}.")
    if options.get("use_cache") is False:
        raise ValueError("Compiled decoding needs the KV cache: drop use_cache=False.")
    # A copy: the caller's config is not changed.
    config = CompileConfig(**compile.to_dict()) if isinstance(compile, CompileConfig) else CompileConfig(fullgraph=True, dynamic=False)
    options["cache_implementation"] = "static"
    options["compile_config"] = _compiled_on_any_device(config)
    new_tokens = options.get("max_new_tokens", model.generation_config.max_new_tokens)
    if new_tokens and "max_cache_len" not in options and hasattr(model.generation_config, "max_cache_len"):
        sequences = model.sequence_format
        longest = max(len(sequences.prompt(index)) for index in range(len(sequences.emotions)))
        options["max_cache_len"] = longest + new_tokens
    return options


def _compiled_on_any_device(config):
    """`config` (a `CompileConfig`), set so that `generate` compiles the decoding step on any device, the CPU included.

    transformers (5.25) compiles it by itself only on accelerators and has no public switch for other devices; the
    private `CompileConfig._compile_all_devices` is the flag its own tests set. (`to_dict` leaves it out, which is why
    the copy above needs it set again.)"""
    config._compile_all_devices = True
    return config


def _attention_maps(model, sequences, memory):
    """Per row, the patch grid's cross-attention of the positions that wrote the explanation (see `predict_batch`)."""
    sequence_format = model.sequence_format
    # The real tokens of each row: from the first non-padding token (the prompt's <bos>) through the first <eos>.
    attention_mask = torch.zeros_like(sequences)
    for row, ids in enumerate(sequences.tolist()):
        start = next((i for i, token in enumerate(ids) if token != sequence_format.pad_token_id), len(ids))
        end = len(ids)
        if sequence_format.eos_token_id in ids[start + 1 :]:
            end = ids.index(sequence_format.eos_token_id, start + 1) + 1
        attention_mask[row, start:end] = 1
    # A token is written at the position before it: the writers of the explanation (and of its <eos>) are the
    # explanation-segment positions whose next token is real.
    in_explanation = sequence_format.segment_ids(sequences) == sequence_format.explanation_token_id
    writers = torch.zeros_like(in_explanation)
    writers[:, :-1] = in_explanation[:, :-1] & attention_mask[:, 1:].bool()
    cross = model(
        input_ids=sequences,
        attention_mask=attention_mask,
        position_ids=(attention_mask.cumsum(-1) - 1).clamp(min=0),  # as generate() numbers left-padded rows
        encoder_hidden_states=memory,
        output_attentions=True,
    ).cross_attentions
    weights = torch.stack(cross).float().mean(dim=(0, 2))  # (batch, seq, patches): mean over layers and heads
    side = model.config.vision_config.image_size // model.config.vision_config.patch_size
    maps = []
    for row in range(sequences.shape[0]):
        positions = writers[row].nonzero().flatten()
        grid = weights[row, positions].mean(0) if positions.numel() else torch.zeros_like(weights[row, 0])
        peak = grid.max()
        grid = grid / peak if peak > 0 else grid
        maps.append(grid.view(side, side).cpu().tolist())
    return maps


def _check_processor(model, processor):
    """The processor must build the model's sequences (emotions, prompt, connector, token ids)."""
    if hasattr(processor, "check_config"):
        processor.check_config(model.config)
    elif list(processor.emotions) != list(model.config.emotions):  # a processor saved before check_config
        raise ValueError(
            f"The processor's emotions {list(processor.emotions)} differ from the model's {list(model.config.emotions)}: "
            "load both from the same folder."
        )


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
    greedily while the scores weigh the whole name and "because". `emotion_source="generation"` gives the freely
    written emotion instead (then `score` is None when it is not one of the classes).

    Parameters (at creation, `pipeline(..., emotion=..., max_new_tokens=...)`, or per call):
        emotion (`str`, *optional*): explain this emotion (one of `model.config.emotions`) for every image.
        emotion_source (`str`, *optional*, defaults to `"scores"`): `"scores"` or `"generation"` (see above).
        return_attention_map (`bool`, *optional*, defaults to `False`): add `"attention_map"`, a rows x cols list of
            floats in [0, 1] over the vision tower's patch grid: where the explanation's cross-attention looked
            (averaged over layers, heads and the positions that wrote the explanation, divided by its maximum).
        batch_size (`int`, *optional*, defaults to 1): images encoded and generated together.
        generate_kwargs (`dict`, *optional*) or keyword arguments: `generate()` options (`max_new_tokens`,
            `num_beams`, `do_sample`, `temperature`, `top_p`, ...). Defaults: the model's generation config
            (greedy, 25 new tokens).
        compile (`bool` or `transformers.CompileConfig`, *optional*, defaults to `False`): compiled decoding, a
            static KV cache and the decoding step compiled by `torch.compile`, with the same tokens as eager
            decoding. It pays on a GPU with many images (the first batch of each size compiles, tens of seconds).

    Each image is read once and encoded once: the image features feed both the scores and the generation. The work
    is `predict_batch` (this file), which evaluation and the command line call too.
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
        _check_processor(model, processor)
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
            emotion_source (`str`, *optional*): `"scores"` (default) or `"generation"`.
            return_attention_map (`bool`, *optional*): add the explanation's attention map over the painting.
            batch_size (`int`, *optional*): images per forward pass.
            kwargs: `generate()` options (`max_new_tokens`, `num_beams`, `do_sample`, ...).
        """
        if isinstance(images, tuple):
            images = list(images)
        if isinstance(images, list) and not images:
            return []
        return super().__call__(images, **kwargs)

    def _sanitize_parameters(
        self, emotion=None, emotion_source=None, return_attention_map=None, generate_kwargs=None, compile=None, **kwargs
    ):
        preprocess_params = {}
        if emotion is not None:
            self.processor.emotion_index(emotion)  # fail now, with the list of classes, not inside a batch
            preprocess_params["emotion"] = emotion
        known = GENERATE_ARGUMENTS | set(vars(GenerationConfig()))
        unknown = sorted(key for key in kwargs if key not in known)
        if unknown:
            raise TypeError(
                f"Unknown argument(s) {unknown} for the art-emotion pipeline. It takes `emotion=`, `emotion_source=`, "
                "`return_attention_map=`, `compile=`, `batch_size=` and generate() options such as max_new_tokens, "
                "num_beams, do_sample, temperature, top_p."
            )
        if emotion_source is not None and emotion_source not in EMOTION_SOURCES:
            raise ValueError(f"emotion_source must be one of {EMOTION_SOURCES}, got {emotion_source!r}.")
        # Options given at creation stay in force unless a call overrides them.
        forward_params = dict(getattr(self, "_forward_params", {}))
        merged = dict(forward_params.get("generate_kwargs", {}))
        merged.update(generate_kwargs or {})
        merged.update(kwargs)
        if merged.get("num_return_sequences", 1) != 1:
            raise ValueError("The art-emotion pipeline returns one explanation per image: drop `num_return_sequences`.")
        forward_params["generate_kwargs"] = merged
        if emotion_source is not None:
            forward_params["emotion_source"] = emotion_source
        if return_attention_map is not None:
            forward_params["return_attention_map"] = bool(return_attention_map)
        if compile is not None:
            forward_params["compile"] = compile
        return preprocess_params, forward_params, {}

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

    def _forward(self, model_inputs, generate_kwargs=None, emotion_source="scores", return_attention_map=False, compile=False):
        emotions = [None if index < 0 else self.emotions[index] for index in model_inputs["emotion_index"].tolist()]
        results = predict_batch(
            self.model,
            self.processor,
            pixel_values=model_inputs["pixel_values"],
            emotions=emotions,
            emotion_source=emotion_source,
            return_attention_map=return_attention_map,
            generate_kwargs=generate_kwargs,
            compile=compile,
        )
        return {"results": results}

    def postprocess(self, model_outputs):
        # One image's dict when the pipeline unbatched the outputs, a one-item list otherwise.
        result = model_outputs["results"]
        return result[0] if isinstance(result, list) else result

    def save_pretrained(self, save_directory, **kwargs):
        """Save a complete SEVLM folder: the model (which registers this pipeline in its folder) and the processor."""
        self.model.save_pretrained(save_directory, **kwargs)
        self.processor.save_pretrained(save_directory)
        return Path(save_directory)


def pipeline_config_entry():
    """The `custom_pipelines` entry of config.json, in the format `Pipeline.save_pretrained` writes."""
    return {TASK: {"impl": f"{Path(PIPELINE_FILE).stem}.{SevlmArtEmotionPipeline.__name__}", "pt": ["AutoModel"], "type": "multimodal"}}


# Register the task for in-process use, e.g. `pipeline("art-emotion", model=model, processor=processor)`. When the
# task is already registered (this file imported both locally and as a folder's remote code) the first
# registration stays: registering again would replace it, with the registry's overwrite warning. (A registration is
# read only by `Pipeline.save_pretrained`; this pipeline's own writes the folder's entry through the model.)
if TASK not in PIPELINE_REGISTRY.supported_tasks:
    PIPELINE_REGISTRY.register_pipeline(TASK, pipeline_class=SevlmArtEmotionPipeline, pt_model=AutoModel, type="multimodal")

__all__ = ["SevlmArtEmotionPipeline", "compiled_generate_kwargs", "pipeline_config_entry", "predict_batch"]
