"""The model contract a transformers user relies on (what transformers' ModelTesterMixin / GenerationTesterMixin check
for its own models), written for SEVLM: cache argument names, attention and hidden-state outputs, tuple outputs, the
vision-language `get_image_features`, weight initialisation, save/load, attention kernels, static cache and
compilation, and the warnings of construction from pretrained parts.

Not covered because they cannot apply here: generation without an image, shrinking the vocabulary below the segment
tokens, gradient checkpointing inside the frozen vision tower.
"""

import copy
import logging
import warnings
from contextlib import contextmanager

import pytest
import torch
from helpers import EXPLANATIONS, corpus_texts, random_images, tiny_text_config, tiny_vision_config
from transformers import (
    CLIPConfig,
    CLIPModel,
    CLIPVisionModel,
    CompileConfig,
    GPT2LMHeadModel,
    GPT2Model,
    GPT2Tokenizer,
)
from transformers.modeling_outputs import BaseModelOutputWithPooling

from modeling_sevlm import SevlmForConditionalGeneration
from processing_sevlm import SevlmProcessor

LAYERS, HEADS, HIDDEN = 2, 2, 32  # the tiny decoder and vision tower of conftest
PATCHES = (32 // 8) ** 2


def text_batch(processor, count=2):
    emotions = ["awe", "something else", "fear", "sadness"][:count]
    return processor(images=random_images(count), emotions=emotions, explanations=EXPLANATIONS[:count])


@pytest.fixture()
def plain(tiny):
    """A tiny model without the contrastive loss (unpaired batches), in eval mode."""
    model, processor = tiny
    model.config.use_contrastive_loss = False
    return model.eval(), processor


# ------------------------------------------------------------------------------------------------------ caches
def test_past_key_values_is_a_deprecated_name_of_cache(plain):
    """A cached step given `past_key_values=` must use that cache (it used to be swallowed, and the step ran without
    its past: wrong logits, no error)."""
    model, processor = plain
    batch = text_batch(processor, 1)
    ids, pixels = batch["input_ids"], batch["pixel_values"]
    full = model(input_ids=ids, pixel_values=pixels).logits[:, -1]
    prefix = model(input_ids=ids[:, :-1], pixel_values=pixels, use_cache=True)
    segments, vad = model.segment_ids(ids), model.vad_features(ids)
    with pytest.warns(FutureWarning, match="past_key_values"):
        step = model(
            input_ids=ids[:, -1:],
            pixel_values=pixels,
            past_key_values=prefix.cache,
            token_type_ids=segments[:, -1:],
            vad_features=vad[:, -1:],
        )
    torch.testing.assert_close(step.logits[:, -1], full, rtol=1e-5, atol=1e-5)
    # The same step under the current name.
    prefix = model(input_ids=ids[:, :-1], pixel_values=pixels, use_cache=True)
    step = model(input_ids=ids[:, -1:], pixel_values=pixels, cache=prefix.cache, token_type_ids=segments[:, -1:], vad_features=vad[:, -1:])
    torch.testing.assert_close(step.logits[:, -1], full, rtol=1e-5, atol=1e-5)
    # Without the tail's segments the model cannot know them: a clear error, not a silent guess.
    prefix = model(input_ids=ids[:, :-1], pixel_values=pixels, use_cache=True)
    with pytest.raises(ValueError, match="token_type_ids"), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        model(input_ids=ids[:, -1:], pixel_values=pixels, past_key_values=prefix.cache)


def test_static_and_dynamic_cache_give_the_same_tokens(trained_tiny):
    model, processor, images = trained_tiny
    pixels = processor(images=images)["pixel_values"]
    for options in ({}, {"num_beams": 2}):
        dynamic = model.generate(pixel_values=pixels, **options)
        static = model.generate(pixel_values=pixels, cache_implementation="static", **options)
        assert torch.equal(dynamic, static), options
    conditioned = processor(images=images, emotions=["awe", "something else", "fear", "sadness"])
    assert torch.equal(model.generate(**conditioned), model.generate(**conditioned, cache_implementation="static"))


def test_static_cache_compiles_as_one_graph(tiny):
    """`_can_compile_fullgraph`: a decoding step with a static cache traces into one graph, without recompiling at
    every step, and gives the eager tokens. (`aot_eager` traces exactly as inductor would, without its slow code
    generation; on a GPU `generate` compiles with inductor automatically.)"""
    model, processor = tiny
    model.eval()
    assert SevlmForConditionalGeneration._can_compile_fullgraph
    compile_config = CompileConfig(fullgraph=True, dynamic=False, backend="aot_eager", mode=None)
    compile_config._compile_all_devices = True  # generate() compiles on accelerators only by default
    torch._dynamo.reset()
    # One graph per batch size, none per step (a batch of one is where stale strides used to slip in).
    with torch._dynamo.config.patch(recompile_limit=2):
        for count in (1, 3):
            pixels = processor(images=random_images(count))["pixel_values"]
            expected = model.generate(pixel_values=pixels, max_new_tokens=8)
            compiled = model.generate(
                pixel_values=pixels, max_new_tokens=8, cache_implementation="static", compile_config=compile_config
            )
            assert torch.equal(compiled, expected)
    assert hasattr(model, "_compiled_call")  # the compiled path ran


# ----------------------------------------------------------------------------------------- attentions, states
def test_forward_returns_attentions_cross_attentions_and_hidden_states(plain):
    model, processor = plain
    batch = text_batch(processor)
    batch_size, length = batch["input_ids"].shape
    plain_out = model(**batch)
    assert plain_out.attentions is None and plain_out.cross_attentions is None and plain_out.hidden_states is None
    out = model(**batch, output_attentions=True, output_hidden_states=True)
    assert len(out.attentions) == len(out.cross_attentions) == LAYERS
    assert len(out.hidden_states) == LAYERS + 1
    for self_attention, cross in zip(out.attentions, out.cross_attentions):
        assert self_attention.shape == (batch_size, HEADS, length, length)
        assert cross.shape == (batch_size, HEADS, length, PATCHES)
        # Real weights: each query's weights sum to 1; no query reads a later token.
        torch.testing.assert_close(cross.sum(-1), torch.ones(batch_size, HEADS, length))
        assert self_attention.triu(diagonal=1).abs().max() == 0
    assert all(state.shape == (batch_size, length, HIDDEN) for state in out.hidden_states)
    torch.testing.assert_close(out.logits, plain_out.logits)
    # The eager kernel served this call only: the model keeps its attention implementation.
    assert model.language_model.config._attn_implementation == "sdpa"


def test_gradients_reach_retained_hidden_states_and_attentions(tiny):
    model, processor = tiny
    model.config.use_contrastive_loss = False
    model.train()
    out = model(**text_batch(processor), output_attentions=True, output_hidden_states=True)
    kept = [out.hidden_states[0], out.attentions[0], out.cross_attentions[0]]
    for tensor in kept:
        tensor.retain_grad()
    out.loss.backward()
    assert all(tensor.grad is not None and tensor.grad.abs().sum() > 0 for tensor in kept)


@pytest.mark.parametrize("mode", ["greedy", "beam", "sample", "assisted"])
def test_generate_dict_outputs(trained_tiny, mode):
    """`return_dict_in_generate` with scores, logits, attentions and hidden states for every decoding method."""
    model, processor, images = trained_tiny
    images = images[:1] if mode == "assisted" else images  # transformers' assisted decoding takes one sequence
    pixels = processor(images=images)["pixel_values"]
    options = {
        "greedy": {},
        "beam": {"num_beams": 2},
        "sample": {"do_sample": True, "top_k": 5},
        "assisted": {"assistant_model": model},
    }[mode]
    new_tokens = 6
    torch.manual_seed(0)
    plain_ids = model.generate(pixel_values=pixels, max_new_tokens=new_tokens, min_new_tokens=new_tokens, **options)
    torch.manual_seed(0)
    out = model.generate(
        pixel_values=pixels,
        max_new_tokens=new_tokens,
        min_new_tokens=new_tokens,
        return_dict_in_generate=True,
        output_scores=True,
        output_logits=True,
        output_attentions=True,
        output_hidden_states=True,
        **options,
    )
    assert torch.equal(out.sequences, plain_ids)
    rows = len(images) * options.get("num_beams", 1)
    prompt = model.prompt(1).shape[1]
    assert len(out.scores) == len(out.logits) == new_tokens
    assert len(out.attentions) == len(out.hidden_states) == new_tokens
    for step, (attentions, states) in enumerate(zip(out.attentions, out.hidden_states)):
        assert len(attentions) == LAYERS and len(states) == LAYERS + 1
        queries = prompt if step == 0 else 1
        assert attentions[0].shape == (rows, HEADS, queries, prompt + step)
        assert states[-1].shape == (rows, queries, HIDDEN)
    if mode == "assisted":
        assert torch.equal(out.sequences, model.generate(pixel_values=pixels, max_new_tokens=new_tokens, min_new_tokens=new_tokens))


# ------------------------------------------------------------------------------------------------ tuple outputs
def _assert_same_nested(left, right):
    if isinstance(left, (tuple, list)):
        assert isinstance(right, (tuple, list)) and len(left) == len(right)
        for a, b in zip(left, right):
            _assert_same_nested(a, b)
    elif isinstance(left, torch.Tensor):
        torch.testing.assert_close(left, right)
    else:
        assert type(left) is type(right)


@pytest.mark.parametrize("flags", [{}, {"output_attentions": True, "output_hidden_states": True}])
def test_return_dict_false_gives_the_same_values_as_a_tuple(tiny, flags):
    model, processor = tiny
    model.eval()
    batch = dict(text_batch(processor))
    batch["pixel_values"] = batch["pixel_values"][:1]
    batch["image_index"] = torch.tensor([0, 0])  # a contrastive pair: every loss term is present
    torch.manual_seed(0)
    as_dict = model(**batch, **flags)
    torch.manual_seed(0)
    as_tuple = model(**batch, **flags, return_dict=False)
    assert isinstance(as_tuple, tuple)
    _assert_same_nested(as_tuple, as_dict.to_tuple())
    assert len(as_tuple) == len([value for value in as_dict.values() if value is not None])
    model.config.return_dict = False
    torch.manual_seed(0)
    assert isinstance(model(**batch, **flags), tuple)


# -------------------------------------------------------------------------------------------- image features
def test_get_image_features_follows_the_vision_language_contract(tokenizer):
    processor = SevlmProcessor.from_vision_text(tiny_vision_config(hidden_size=48), copy.deepcopy(tokenizer))
    model = SevlmForConditionalGeneration.from_vision_text(tiny_vision_config(hidden_size=48), tiny_text_config(), processor)
    model.eval()
    pixels = processor(images=random_images(3))["pixel_values"]
    features = model.get_image_features(pixels, output_hidden_states=True, output_attentions=True)
    assert isinstance(features, BaseModelOutputWithPooling)
    # The cross-attention memory: CLIP's patch tokens after its last layer norm, projected to the decoder's width.
    vision = model.vision_model(pixel_values=pixels)
    expected = model.image_projection(model.vision_model.post_layernorm(vision.last_hidden_state[:, 1:]))
    assert features.last_hidden_state.shape == (3, PATCHES, HIDDEN)
    torch.testing.assert_close(features.last_hidden_state, expected)
    torch.testing.assert_close(features.pooler_output, expected.mean(1))
    assert len(features.hidden_states) == 3 and features.hidden_states[0].shape == (3, PATCHES + 1, 48)
    assert len(features.attentions) == 2 and features.attentions[0].shape == (3, 2, PATCHES + 1, PATCHES + 1)
    as_tuple = model.get_image_features(pixels, return_dict=False)
    assert isinstance(as_tuple, tuple)
    torch.testing.assert_close(as_tuple[0], expected)
    # generate, emotion_scores and forward take the output or its memory as `encoder_hidden_states`.
    for memory in (features, features.last_hidden_state):
        torch.testing.assert_close(model.emotion_scores(encoder_hidden_states=memory), model.emotion_scores(pixels))
        assert torch.equal(model.generate(encoder_hidden_states=memory, max_new_tokens=4), model.generate(pixel_values=pixels, max_new_tokens=4))


# ----------------------------------------------------------------------------------------------- weights
def _std(tensor):
    return float(tensor.detach().float().std())


def test_weights_missing_from_a_checkpoint_get_the_stock_initialisation(tiny):
    """Every weight that `from_pretrained` has to create is initialised as in a freshly built model: GPT-2's scaled
    residual projections, CLIP's attention/MLP scheme, SEVLM's identity fusion (it used to be a generic N(0, 0.02))."""
    model, _ = tiny
    config = copy.deepcopy(model.config)
    torch.manual_seed(0)
    fresh = SevlmForConditionalGeneration(copy.deepcopy(config))
    torch.manual_seed(1)
    missing = SevlmForConditionalGeneration.from_pretrained(None, config=copy.deepcopy(config), state_dict={})
    stock_gpt2 = GPT2Model(copy.deepcopy(config.text_config))
    stock_clip = CLIPVisionModel(copy.deepcopy(config.vision_config))
    # The schemes the issue is about, against the stock models: GPT-2 c_proj std 0.02 / sqrt(2 * layers), CLIP q_proj.
    for ours, stock in [
        (missing.language_model.transformer.h[0].attn.c_proj.weight, stock_gpt2.h[0].attn.c_proj.weight),
        (missing.language_model.transformer.h[1].crossattention.c_proj.weight, stock_gpt2.h[1].crossattention.c_proj.weight),
        (missing.vision_model.encoder.layers[0].self_attn.q_proj.weight, stock_clip.encoder.layers[0].self_attn.q_proj.weight),
        (missing.vision_model.encoder.layers[1].mlp.fc2.weight, stock_clip.encoder.layers[1].mlp.fc2.weight),
    ]:
        assert _std(ours) == pytest.approx(_std(stock), rel=0.2)
    # And every tensor against a fresh model: constants exactly, random ones by their spread.
    fresh_state, missing_state = fresh.state_dict(), missing.state_dict()
    assert sorted(fresh_state) == sorted(missing_state)
    for name, expected in fresh_state.items():
        got = missing_state[name]
        assert got.device.type != "meta", name
        if expected.numel() < 2 or _std(expected) == 0:
            assert torch.equal(got, expected), name
        elif expected.numel() >= 256:
            assert _std(got) == pytest.approx(_std(expected), rel=0.25), name
        else:  # a handful of values (the 3-wide VAD encoder): the spread is only roughly known
            assert 1 / 3 < _std(got) / _std(expected) < 3, name


def test_partial_checkpoint_keeps_loaded_weights_and_initialises_the_rest(tiny, tmp_path):
    model, _ = tiny
    model.save_pretrained(tmp_path)
    state = {k: v for k, v in model.state_dict().items() if ".crossattention." not in k}
    loaded = SevlmForConditionalGeneration.from_pretrained(None, config=copy.deepcopy(model.config), state_dict=state)
    for name, value in loaded.state_dict().items():
        if ".crossattention." not in name:
            assert torch.equal(value, model.state_dict()[name]), name
    stock = GPT2Model(copy.deepcopy(model.config.text_config))
    for layer in range(LAYERS):
        ours = loaded.language_model.transformer.h[layer].crossattention.c_proj.weight
        assert _std(ours) == pytest.approx(_std(stock.h[layer].crossattention.c_proj.weight), rel=0.2)


def test_meta_device_model_initialises_every_buffer(tiny):
    model, processor = tiny
    with torch.device("meta"):
        on_meta = SevlmForConditionalGeneration(copy.deepcopy(model.config))
    on_meta.to_empty(device="cpu")
    on_meta.init_weights()
    reference = SevlmForConditionalGeneration(copy.deepcopy(model.config))
    buffers = dict(on_meta.named_buffers())
    for name, expected in reference.named_buffers():
        assert torch.equal(buffers[name], expected), name
    torch.testing.assert_close(on_meta.vad_fusion.weight[:, :HIDDEN], torch.eye(HIDDEN))
    logits = on_meta.eval()(**processor(images=random_images(1))).logits
    assert torch.isfinite(logits).all()


def test_save_and_load_round_trip(plain, tmp_path):
    model, processor = plain
    model.save_pretrained(tmp_path)
    from safetensors import safe_open

    with safe_open(tmp_path / "model.safetensors", "pt") as handle:
        stored = set(handle.keys())
    assert "language_model.lm_head.weight" not in stored and "vad_table" in stored
    reloaded = SevlmForConditionalGeneration.from_pretrained(tmp_path).eval()
    assert reloaded.language_model.lm_head.weight is reloaded.get_input_embeddings().weight
    expected_state = model.state_dict()
    for name, value in reloaded.state_dict().items():
        assert torch.equal(value, expected_state[name]), name  # VAD encoder, fusion, table, heads included
    batch = text_batch(processor)
    torch.testing.assert_close(reloaded(**batch).logits, model(**batch).logits)


@pytest.mark.parametrize("implementation", ["eager", "sdpa"])
def test_eager_and_sdpa_attention_agree(plain, tmp_path, implementation):
    model, processor = plain
    model.save_pretrained(tmp_path)
    loaded = SevlmForConditionalGeneration.from_pretrained(tmp_path, attn_implementation=implementation).eval()
    assert loaded.language_model.config._attn_implementation == implementation
    assert loaded.vision_model.config._attn_implementation == implementation
    batch = text_batch(processor)
    torch.testing.assert_close(loaded(**batch).logits, model(**batch).logits, rtol=1e-4, atol=1e-5)
    pixels = batch["pixel_values"]
    assert torch.equal(loaded.generate(pixel_values=pixels, max_new_tokens=6), model.generate(pixel_values=pixels, max_new_tokens=6))


def test_left_padding_does_not_change_the_next_token(plain):
    """A left-padded row predicts what it predicts alone, given the position ids generate() derives from the mask."""
    model, processor = plain
    images = random_images(2)
    padded = processor(images=images, emotions=["awe", "something else"])
    assert padded["attention_mask"][0, 0] == 0
    positions = (padded["attention_mask"].cumsum(-1) - 1).clamp(min=0)
    batch_logits = model(**padded, position_ids=positions).logits[:, -1]
    alone = model(**processor(images=images[:1], emotions=["awe"])).logits[:, -1]
    torch.testing.assert_close(batch_logits[:1], alone, rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------------------- construction
@contextmanager
def transformers_log():
    records = []
    handler = logging.Handler(level=logging.WARNING)
    handler.emit = records.append
    logger = logging.getLogger("transformers")
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)


def test_building_from_pretrained_parts_does_not_warn_about_the_pad_token(tmp_path):
    """With a GPT-2 tokenizer, `<pad>` gets the id just past the pretrained vocabulary: the embeddings must grow
    before the id is set, or transformers warns that the pad id is outside the vocabulary."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    # A GPT-2 style tokenizer whose only special token is <|endoftext|>, as the pretrained GPT-2 one.
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=331, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    backend.train_from_iterator(corpus_texts(), trainer)
    gpt2_like = GPT2Tokenizer(tokenizer_object=backend, bos_token="<|endoftext|>", eos_token="<|endoftext|>", unk_token="<|endoftext|>")
    vocabulary = len(gpt2_like)
    gpt2 = GPT2LMHeadModel(tiny_text_config(vocab_size=vocabulary, bos_token_id=0, eos_token_id=0))
    gpt2.save_pretrained(tmp_path / "gpt2")
    CLIPModel(
        CLIPConfig(
            vision_config=tiny_vision_config().to_dict(),
            text_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2),
        )
    ).save_pretrained(tmp_path / "clip")
    processor = SevlmProcessor.from_vision_text(tiny_vision_config(), gpt2_like)
    pad = processor.tokenizer.pad_token_id
    assert pad >= vocabulary  # the case that warned
    with transformers_log() as records:
        model = SevlmForConditionalGeneration.from_vision_text(tmp_path / "clip", tmp_path / "gpt2", processor)
    messages = [record.getMessage() for record in records]
    assert not [m for m in messages if "pad_token_id" in m or "within the vocabulary" in m], messages
    assert model.config.text_config.pad_token_id == pad < model.config.text_config.vocab_size == len(processor.tokenizer)
    torch.testing.assert_close(model.get_input_embeddings().weight[:vocabulary], gpt2.get_input_embeddings().weight)
