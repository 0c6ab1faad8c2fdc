"""The transformers model contract, checked on a SEVLM built from a config (not through `from_vision_text`), with
random token ids and no tokenizer, the way transformers' own `ModelTesterMixin` and `GenerationTesterMixin` check
their models.

Those mixins cannot run here: they live in transformers' repository tests, not in the pip package. The PyPI sdist
of transformers 5.25.0 (`pip download --no-deps --no-binary :all: transformers==5.25.0`) ships
`tests/test_modeling_common.py`, but that module imports `tests/generation/test_utils.py` (GenerationTesterMixin) and
`tests/exporters/test_export.py`, which the sdist does not ship, so neither mixin can be imported offline in CI. The
checks that apply to SEVLM are written here instead (and in test_modeling_common_sevlm.py, test_generation_sevlm.py):

| transformers mixin test | here |
|---|---|
| GenerationTesterMixin.prepare_config_and_inputs_for_generate (`eos_token_id=None`) | every generation test below |
| test_greedy_generate, test_sample_generate, test_beam_search_generate, test_beam_sample_generate (and their `_dict_outputs`, `_use_cache` variants; num_return_sequences) | test_decoding_methods_run_to_max_new_tokens_without_an_eos |
| test_generate_without_input_ids | test_generate_without_input_ids_starts_from_the_prompt |
| test_left_padding_compatibility | test_left_padding_compatibility |
| test_past_key_values_format | test_cache_format |
| test_generate_continue_from_past_key_values | test_generate_continues_from_a_returned_cache |
| test_generate_with_static_cache, test_generate_compile_model_forward | test_static_cache_matches_dynamic; test_modeling_common_sevlm.py::test_static_cache_compiles_as_one_graph |
| test_generate_methods_with_logits_to_keep, test_forward_with_logits_to_keep | test_logits_to_keep |
| test_assisted_decoding_matches_greedy_search, test_prompt_lookup_decoding_matches_greedy_search, test_assisted_decoding_sample | test_assisted_and_prompt_lookup_decoding_match_greedy |
| test_generate_with_and_without_position_ids | test_generate_with_and_without_position_ids |
| test_prepare_inputs_for_generation_decoder_llm | test_prepare_inputs_for_generation_slices_to_the_new_tokens |
| test_inherits_generation_mixin, test_model_main_input_name, test_model_get_set_embeddings | test_model_basics |
| test_determinism, test_batching_equivalence | test_determinism_and_batching_equivalence |
| test_attention_outputs, test_hidden_states_output (argument and config) | test_attention_and_hidden_state_outputs_from_the_config; test_modeling_common_sevlm.py::test_forward_returns_attentions_cross_attentions_and_hidden_states |
| test_multimodal_outputs_are_returned | test_multimodal_outputs_are_returned |
| test_get_image_features_output, _hidden_states, _attentions | test_get_image_features_contract |
| test_internal_model_config_and_subconfig_are_same, test_attn_implementation_composite_models, test_can_set_attention_dynamically_composite_model | test_sub_models_share_the_configs_and_attention_kernel |
| test_resize_tokens_embeddings | test_resize_tokens_embeddings |
| test_model_outputs_equivalence | test_modeling_common_sevlm.py::test_return_dict_false_gives_the_same_values_as_a_tuple |
| test_save_load, test_can_use_safetensors, test_load_save_without_tied_weights, test_save_load_keys_to_ignore_on_save, test_tied_weights_keys | test_save_and_load_from_a_config; test_modeling_common_sevlm.py::test_save_and_load_round_trip |
| test_from_pretrained_no_checkpoint, test_can_init_all_missing_weights, test_init_weights_can_init_buffers, test_can_be_initialized_on_meta | test_modeling_common_sevlm.py (weights missing from a checkpoint, meta device) |
| test_eager_matches_sdpa_inference | test_modeling_common_sevlm.py::test_eager_and_sdpa_attention_agree |
| test_training, test_training_gradient_checkpointing, test_retain_grad_hidden_states_attentions | test_training_step; test_modeling_sevlm.py::test_gradient_checkpointing_gives_the_same_gradients; test_modeling_common_sevlm.py::test_gradients_reach_retained_hidden_states_and_attentions |
| test_bc_cache_name_forward | test_modeling_common_sevlm.py::test_past_key_values_is_a_deprecated_name_of_cache |

Where SEVLM differs from transformers' defaults, by design:
- `get_image_features(...).last_hidden_state` is the cross-attention memory (CLIP's patch tokens projected to the
  decoder's width) and `pooler_output` its mean per image, `(images, hidden)`; test_get_image_features_output expects
  the vision tower's width, and test_get_image_features_pooler_output one 2-d array per image (it runs only for
  models in transformers' image-text-to-text mapping).
- The decoder's self-attention cache also holds the causal VAD encoder's keys and values, in layers after the
  decoder's (keys `(batch, vad_encoder_heads, length, 3 // vad_encoder_heads + 1)` with a mask column, values
  `(batch, vad_encoder_heads, length, 3)` through the output projection), which test_past_key_values_format would
  count as decoder layers.
- Not applicable: inputs_embeds (segments and VAD features are read from the token ids), generation without an
  image, head masking, sequence classification heads, the Hub-hosted decoding methods (contrastive search, DoLa,
  group and constrained beam search), flash attention, multi-GPU.
"""

import copy

import pytest
import torch
from transformers import CLIPVisionConfig, GenerationMixin, GPT2Config
from transformers.modeling_outputs import BaseModelOutputWithPooling

from configuration_sevlm import SevlmConfig
from modeling_sevlm import SevlmForConditionalGeneration

BATCH, LENGTH, VOCAB, HIDDEN, VISION_HIDDEN, LAYERS, VISION_LAYERS, HEADS = 3, 7, 99, 32, 24, 2, 2, 2
PATCHES = (32 // 8) ** 2
NEW_TOKENS = 3


def get_config(**overrides):
    """A tiny SEVLM config with made-up token ids, as a model tester writes one (no tokenizer)."""
    text = GPT2Config(
        vocab_size=VOCAB, n_embd=HIDDEN, n_layer=LAYERS, n_head=HEADS, n_positions=64, bos_token_id=0, eos_token_id=2, pad_token_id=1
    )
    vision = CLIPVisionConfig(
        hidden_size=VISION_HIDDEN,
        intermediate_size=37,
        num_hidden_layers=VISION_LAYERS,
        num_attention_heads=HEADS,
        image_size=32,
        patch_size=8,
    )
    values = dict(
        emotions=["joy", "gloom", "calm"],
        emotion_token_id=97,
        explanation_token_id=98,
        prompt_token_ids=[10, 11],
        connector_token_ids=[12],
        emotion_token_ids=[[20], [21, 22], [23]],
        use_contrastive_loss=False,
    )
    values.update(overrides)
    return SevlmConfig(vision_config=vision, text_config=text, **values)


def prepare_config_and_inputs(seed=0):
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(3, VOCAB - 3, (BATCH, LENGTH), generator=generator)
    input_ids[:, LENGTH // 2] = 12  # the connector: the later tokens are explanation, where the VAD path is active
    inputs = {
        "input_ids": input_ids,
        "attention_mask": torch.ones_like(input_ids),
        "pixel_values": torch.randn(BATCH, 3, 32, 32, generator=generator),
    }
    return get_config(), inputs


def prepare_config_and_inputs_for_generate(seed=0):
    """As GenerationTesterMixin does: no eos token, so that no row stops early and lengths can be checked."""
    config, inputs = prepare_config_and_inputs(seed)
    config.text_config.eos_token_id = None
    return config, inputs


def build(config, seed=0):
    torch.manual_seed(seed)
    model = SevlmForConditionalGeneration(config).eval()
    with torch.no_grad():  # the fusion starts silent on its VAD columns; let the VAD features show
        model.vad_fusion.weight[:, -3:].normal_(0.0, 0.5)
        model.vad_table.normal_(0.0, 0.5)
    return model


# ------------------------------------------------------------------------------------------ generation
def _check_generate_outputs(out, prompt, use_cache, rows, running_rows):
    """Shapes of a `return_dict_in_generate` output: `rows` returned sequences, `running_rows` decoded at each step
    (the beams); without a cache every step reads the whole sequence."""
    assert out.sequences.shape == (rows, prompt + NEW_TOKENS)
    assert len(out.scores) == len(out.logits) == len(out.attentions) == len(out.hidden_states) == NEW_TOKENS
    for step in range(NEW_TOKENS):
        assert out.scores[step].shape == out.logits[step].shape == (running_rows, VOCAB)
        keys = prompt + step
        queries = keys if not use_cache or step == 0 else 1
        assert len(out.attentions[step]) == LAYERS
        assert all(attention.shape == (running_rows, HEADS, queries, keys) for attention in out.attentions[step])
        assert len(out.hidden_states[step]) == LAYERS + 1
        assert all(state.shape == (running_rows, queries, HIDDEN) for state in out.hidden_states[step])


@pytest.mark.parametrize("use_cache", [True, False])
@pytest.mark.parametrize(
    "method",
    [
        {"do_sample": False, "num_beams": 1},
        {"do_sample": True, "num_beams": 1, "top_k": 10, "top_p": 0.7, "temperature": 0.7, "num_return_sequences": 2},
        {"do_sample": False, "num_beams": 2, "length_penalty": 2.0, "early_stopping": False},
        {"do_sample": True, "num_beams": 2, "top_k": 10, "num_return_sequences": 2},
    ],
    ids=["greedy", "sample", "beam_search", "beam_sample"],
)
def test_decoding_methods_run_to_max_new_tokens_without_an_eos(method, use_cache):
    """The text config's eos_token_id is None (transformers' generation tests set it so to check lengths): every row
    runs to max_new_tokens, with scores, logits, attentions and hidden states of every step. It used to fail: the
    sequence format required an eos."""
    config, inputs = prepare_config_and_inputs_for_generate()
    model = build(config)
    model.set_attn_implementation("eager")
    rows = BATCH * method.get("num_return_sequences", 1)
    running_rows = BATCH * max(method["num_beams"], method.get("num_return_sequences", 1))
    torch.manual_seed(0)
    plain = model.generate(**inputs, max_new_tokens=NEW_TOKENS, use_cache=use_cache, bad_words_ids=[[1, 0]], **method)
    assert plain.shape == (rows, LENGTH + NEW_TOKENS)
    torch.manual_seed(0)
    out = model.generate(
        **inputs,
        max_new_tokens=NEW_TOKENS,
        use_cache=use_cache,
        bad_words_ids=[[1, 0]],
        repetition_penalty=1.2,
        remove_invalid_values=True,
        return_dict_in_generate=True,
        output_scores=True,
        output_logits=True,
        output_attentions=True,
        output_hidden_states=True,
        **method,
    )
    _check_generate_outputs(out, LENGTH, use_cache, rows, running_rows)


def test_sequences_without_an_eos_are_read_and_refused_for_training():
    config, _ = prepare_config_and_inputs_for_generate()
    sequences = config.sequence_format
    assert sequences.eos_token_id is None
    assert sequences.split_generated([0, 10, 11, 20, 12, 40, 41]) == ([20], [40, 41])
    with pytest.raises(ValueError, match="eos_token_id"):
        sequences.training_ids(0, [40, 41], max_length=20)


def test_generate_without_input_ids_starts_from_the_prompt():
    config, inputs = prepare_config_and_inputs_for_generate()
    model = build(config)
    out = model.generate(pixel_values=inputs["pixel_values"], max_new_tokens=NEW_TOKENS)
    assert out.shape == (BATCH, 3 + NEW_TOKENS)
    assert out[:, :3].tolist() == [[0, 10, 11]] * BATCH


@torch.no_grad()
def test_left_padding_compatibility():
    """Left padding does not change the next-token logits, given the position ids generate derives from the mask."""
    config, inputs = prepare_config_and_inputs()
    model = build(config)
    plain = model(**inputs).logits[:, -1]
    pad = torch.full((BATCH, 4), config.text_config.pad_token_id)
    input_ids = torch.cat([pad, inputs["input_ids"]], -1)
    attention_mask = torch.cat([torch.zeros_like(pad), inputs["attention_mask"]], -1)
    positions = (attention_mask.cumsum(-1) - 1).masked_fill(attention_mask == 0, 0)
    padded = model(
        input_ids=input_ids, attention_mask=attention_mask, position_ids=positions, pixel_values=inputs["pixel_values"]
    ).logits[:, -1]
    torch.testing.assert_close(padded, plain, rtol=1e-5, atol=1e-5)


def test_cache_format():
    """The decoder's layers in the usual shape, then the VAD encoder's; the cross-attention cache holds the image."""
    config, inputs = prepare_config_and_inputs_for_generate()
    model = build(config)
    out = model.generate(**inputs, max_new_tokens=NEW_TOKENS, return_dict_in_generate=True)
    length = LENGTH + NEW_TOKENS - 1  # the last token is not fed back
    self_layers = out.cache.self_attention_cache.layers
    assert len(self_layers) == LAYERS + config.vad_encoder_layers
    for layer in self_layers[:LAYERS]:
        assert layer.keys.shape == layer.values.shape == (BATCH, HEADS, length, HIDDEN // HEADS)
    heads = config.vad_encoder_heads
    for layer in self_layers[LAYERS:]:  # keys with their mask column, values through the output projection
        assert layer.keys.shape == (BATCH, heads, length, 3 // heads + 1)
        assert layer.values.shape == (BATCH, heads, length, 3)
    for layer in out.cache.cross_attention_cache.layers:
        assert layer.keys.shape == (BATCH, HEADS, PATCHES, HIDDEN // HEADS)


@torch.no_grad()
def test_generate_continues_from_a_returned_cache():
    config, inputs = prepare_config_and_inputs_for_generate()
    model = build(config)
    whole = model.generate(**inputs, max_new_tokens=6, do_sample=False)
    first = model.generate(**inputs, max_new_tokens=3, do_sample=False, return_dict_in_generate=True)
    resumed = model.generate(
        input_ids=first.sequences,
        attention_mask=torch.ones_like(first.sequences),
        pixel_values=inputs["pixel_values"],
        cache=first.cache,
        max_new_tokens=3,
        do_sample=False,
    )
    assert torch.equal(resumed, whole)


def test_static_cache_matches_dynamic():
    config, inputs = prepare_config_and_inputs_for_generate()
    model = build(config)
    for method in ({}, {"num_beams": 2}):
        dynamic = model.generate(**inputs, max_new_tokens=5, **method)
        static = model.generate(**inputs, max_new_tokens=5, cache_implementation="static", **method)
        assert torch.equal(static, dynamic), method


@torch.no_grad()
def test_logits_to_keep():
    config, inputs = prepare_config_and_inputs()
    model = build(config)
    full = model(**inputs).logits
    assert model(**inputs, logits_to_keep=1).logits.shape == (BATCH, 1, VOCAB)
    torch.testing.assert_close(model(**inputs, logits_to_keep=1).logits, full[:, -1:])
    config, inputs = prepare_config_and_inputs_for_generate()
    model = build(config)
    assert torch.equal(
        model.generate(**inputs, max_new_tokens=4, logits_to_keep=0), model.generate(**inputs, max_new_tokens=4)
    )


def test_assisted_and_prompt_lookup_decoding_match_greedy():
    config, inputs = prepare_config_and_inputs_for_generate()
    model = build(config)
    one = {key: value[:1] for key, value in inputs.items()}  # assisted decoding takes one sequence
    greedy = model.generate(**one, max_new_tokens=6)
    assistant = build(copy.deepcopy(config), seed=1)  # another model: some candidates are rejected and cropped
    assert torch.equal(model.generate(**one, max_new_tokens=6, assistant_model=assistant), greedy)
    assert torch.equal(model.generate(**one, max_new_tokens=6, prompt_lookup_num_tokens=2), greedy)
    sampled = model.generate(**one, max_new_tokens=6, assistant_model=assistant, do_sample=True, top_k=5)
    assert sampled.shape == (1, LENGTH + 6)


def test_generate_with_and_without_position_ids():
    config, inputs = prepare_config_and_inputs_for_generate()
    model = build(config)
    positions = torch.arange(LENGTH).expand(BATCH, -1)
    assert torch.equal(
        model.generate(**inputs, position_ids=positions, max_new_tokens=4), model.generate(**inputs, max_new_tokens=4)
    )


@torch.no_grad()
def test_prepare_inputs_for_generation_slices_to_the_new_tokens():
    """With a filled cache only the new token goes in, with its segment and position; without, the whole sequence."""
    config, inputs = prepare_config_and_inputs_for_generate()
    model = build(config)
    prefix = model(**inputs, use_cache=True)
    next_ids = torch.cat([inputs["input_ids"], torch.full((BATCH, 1), 12)], -1)
    mask = torch.ones_like(next_ids)
    positions = torch.arange(LENGTH + 1).expand(BATCH, -1)
    step = model.prepare_inputs_for_generation(next_ids, attention_mask=mask, position_ids=positions, cache=prefix.cache, next_sequence_length=1)
    assert torch.equal(step["input_ids"], next_ids[:, -1:])
    assert torch.equal(step["token_type_ids"], model.segment_ids(next_ids)[:, -1:])
    assert torch.equal(step["position_ids"], positions[:, -1:])
    whole = model.prepare_inputs_for_generation(next_ids, attention_mask=mask)
    assert torch.equal(whole["input_ids"], next_ids) and torch.equal(whole["token_type_ids"], model.segment_ids(next_ids))
    logits = model(**{**step, "encoder_hidden_states": model.get_image_features(inputs["pixel_values"]).last_hidden_state}).logits
    full = model(input_ids=next_ids, attention_mask=mask, pixel_values=inputs["pixel_values"]).logits
    torch.testing.assert_close(logits[:, -1], full[:, -1], rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------------------------- the model
def test_model_basics():
    config, inputs = prepare_config_and_inputs()
    model = build(config)
    assert isinstance(model, GenerationMixin) and model.can_generate()
    assert model.main_input_name == "input_ids"
    assert model.get_input_embeddings() is model.language_model.transformer.wte
    assert model.get_output_embeddings() is model.language_model.lm_head
    replacement = torch.nn.Embedding(VOCAB, HIDDEN)
    model.set_input_embeddings(replacement)
    assert model.get_input_embeddings() is replacement


@torch.no_grad()
def test_determinism_and_batching_equivalence():
    config, inputs = prepare_config_and_inputs()
    model = build(config)
    first, second = model(**inputs).logits, model(**inputs).logits
    assert torch.equal(first, second)
    rows = [model(**{key: value[row : row + 1] for key, value in inputs.items()}).logits for row in range(BATCH)]
    torch.testing.assert_close(torch.cat(rows), first, rtol=1e-5, atol=1e-5)


@torch.no_grad()
def test_attention_and_hidden_state_outputs_from_the_config():
    config, inputs = prepare_config_and_inputs()
    model = build(config)
    model.set_attn_implementation("eager")
    model.config.output_attentions = True
    model.config.output_hidden_states = True
    out = model(**inputs)
    assert len(out.attentions) == len(out.cross_attentions) == LAYERS
    assert out.attentions[0].shape == (BATCH, HEADS, LENGTH, LENGTH)
    assert out.cross_attentions[0].shape == (BATCH, HEADS, LENGTH, PATCHES)
    assert len(out.hidden_states) == LAYERS + 1 and out.hidden_states[0].shape == (BATCH, LENGTH, HIDDEN)
    assert len(out.image_outputs.attentions) == VISION_LAYERS and len(out.image_outputs.hidden_states) == VISION_LAYERS + 1


@torch.no_grad()
@pytest.mark.parametrize("flags_from", ["arguments", "config"])
def test_multimodal_outputs_are_returned(flags_from):
    """forward returns the image encoder's output as `image_outputs` (transformers' vision-language models do since
    5.2x), with the vision tower's attentions and hidden states when asked; it used to return none."""
    config, inputs = prepare_config_and_inputs()
    model = build(config)
    model.set_attn_implementation("eager")
    if flags_from == "config":
        for part in (model.config, model.config.vision_config, model.config.text_config):
            part.output_attentions = part.output_hidden_states = True
        out = model(**inputs)
    else:
        out = model(**inputs, output_attentions=True, output_hidden_states=True)
    image = out.image_outputs
    assert isinstance(image, BaseModelOutputWithPooling)
    assert len(image.pooler_output) == BATCH
    torch.testing.assert_close(image.last_hidden_state, out.image_embeds)
    assert len(image.hidden_states) == VISION_LAYERS + 1 and image.hidden_states[0].shape == (BATCH, PATCHES + 1, VISION_HIDDEN)
    assert len(image.attentions) == VISION_LAYERS and image.attentions[0].shape == (BATCH, HEADS, PATCHES + 1, PATCHES + 1)
    as_tuple = model(**inputs, output_attentions=True, output_hidden_states=True, return_dict=False)
    assert isinstance(as_tuple[-1], tuple) and torch.equal(as_tuple[-1][0], image.last_hidden_state)
    # Given the image features instead of pixels, the output carries them back; given the bare memory, none.
    features = model.get_image_features(inputs["pixel_values"])
    assert model(input_ids=inputs["input_ids"], encoder_hidden_states=features).image_outputs is features
    assert model(input_ids=inputs["input_ids"], encoder_hidden_states=features.last_hidden_state).image_outputs is None


@torch.no_grad()
def test_get_image_features_contract():
    """A BaseModelOutputWithPooling (a tuple with return_dict=False), one row per image, with the vision tower's
    hidden states and attentions asked by argument or by the config. Asking through the configs used to return none."""
    config, inputs = prepare_config_and_inputs()
    pixels = inputs["pixel_values"]
    model = build(config)
    out = model.get_image_features(pixel_values=pixels)
    assert isinstance(out, BaseModelOutputWithPooling) and out.hidden_states is None and out.attentions is None
    assert out.last_hidden_state.shape == (BATCH, PATCHES, HIDDEN) and out.pooler_output.shape == (BATCH, HIDDEN)
    every = model.get_image_features(pixel_values=pixels, output_hidden_states=True)
    torch.testing.assert_close(every.last_hidden_state, out.last_hidden_state)  # asking for more changes nothing
    assert len(every.hidden_states) == VISION_LAYERS + 1
    for part in (model.config, model.config.vision_config):
        part.output_hidden_states = True
    assert len(model.get_image_features(pixel_values=pixels).hidden_states) == VISION_LAYERS + 1
    model.config.output_hidden_states = model.config.vision_config.output_hidden_states = False
    model.config.output_hidden_states = True  # the SEVLM config alone asks for them too
    assert len(model.get_image_features(pixel_values=pixels).hidden_states) == VISION_LAYERS + 1
    model.set_attn_implementation("eager")
    attentions = model.get_image_features(pixel_values=pixels, output_hidden_states=False, output_attentions=True).attentions
    assert len(attentions) == VISION_LAYERS
    model.config.vision_config.output_attentions = True
    assert len(model.get_image_features(pixel_values=pixels).attentions) == VISION_LAYERS
    model.config.return_dict = False
    assert isinstance(model.get_image_features(pixel_values=pixels), tuple)


def test_sub_models_share_the_configs_and_attention_kernel():
    config, inputs = prepare_config_and_inputs()
    model = build(config)
    assert model.vision_model.config is model.config.vision_config
    assert model.language_model.config is model.config.text_config
    with torch.no_grad():
        sdpa = model(**inputs).logits
    model.set_attn_implementation("eager")
    assert model.vision_model.config._attn_implementation == model.language_model.config._attn_implementation == "eager"
    with torch.no_grad():
        torch.testing.assert_close(model(**inputs).logits, sdpa, rtol=1e-4, atol=1e-5)


def test_resize_tokens_embeddings():
    config, inputs = prepare_config_and_inputs()
    model = build(config)
    model.resize_token_embeddings(VOCAB + 5)
    assert model.config.text_config.vocab_size == VOCAB + 5 and model.vad_table.shape == (VOCAB + 5, 3)
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight
    with torch.no_grad():
        assert model(**inputs).logits.shape == (BATCH, LENGTH, VOCAB + 5)


def test_save_and_load_from_a_config(tmp_path):
    config, inputs = prepare_config_and_inputs()
    model = build(config)
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    loaded = SevlmForConditionalGeneration.from_pretrained(tmp_path).eval()
    assert loaded.get_output_embeddings().weight is loaded.get_input_embeddings().weight
    with torch.no_grad():
        torch.testing.assert_close(loaded(**inputs).logits, model(**inputs).logits)


def test_training_step():
    """A training step: the loss needs no cache (none is made), and every trained module gets gradients."""
    config, inputs = prepare_config_and_inputs()
    model = build(config).train()
    labels = inputs["input_ids"].clone()
    out = model(**inputs, labels=labels)
    assert out.cache is None and torch.isfinite(out.loss)
    out.loss.backward()
    for name in ("language_model", "vad_encoder", "vad_fusion", "vad_head"):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in getattr(model, name).parameters()), name
