"""Cached generation against a straightforward uncached recomputation, and compiled decoding.

The causal VAD encoder keeps its keys and values in the decoder's KV cache, so that a decoding step runs it over its
new token only and reads the segment of that token from one comparison over the ids. These tests pin that every
decoding mode still gives the tokens of a plain loop that recomputes the whole sequence at every step: greedy and
beam search, seeded sampling, left-padded emotion-conditioned prompts, the static cache, continuing from a returned
cache, assisted decoding, the bidirectional encoder (which runs without a cache), and compiled decoding.
"""

import copy

import pytest
import torch
from helpers import build_tiny, random_images
from transformers import CompileConfig
from transformers.cache_utils import DynamicLayer, StaticLayer

from pipeline_sevlm import SevlmArtEmotionPipeline, compiled_generate_kwargs, predict_batch

CONDITIONED = ["awe", "something else", "fear", "sadness"]  # "something else" is longer: the others are left-padded


def reference_greedy(model, memory, input_ids, attention_mask, new_tokens):
    """Greedy decoding the plain way: a full forward over the whole sequence at every step, no cache. Positions are
    counted over the real tokens (as generate numbers left-padded rows); a finished row continues with padding."""
    eos, pad = model.config.text_config.eos_token_id, model.config.text_config.pad_token_id
    finished = torch.zeros(input_ids.shape[0], dtype=torch.bool)
    for _ in range(new_tokens):
        positions = (attention_mask.cumsum(-1) - 1).masked_fill(attention_mask == 0, 0)
        logits = model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=positions,
            encoder_hidden_states=memory,
            use_cache=False,
        ).logits[:, -1]
        token = logits.argmax(-1).masked_fill(finished, pad)
        finished |= token == eos
        input_ids = torch.cat([input_ids, token[:, None]], dim=-1)
        attention_mask = torch.cat([attention_mask, torch.ones_like(attention_mask[:, :1])], dim=-1)
        if finished.all():
            break
    return input_ids


@pytest.fixture()
def live_vad(tokenizer):
    """A tiny model with random weights whose fusion reads the VAD features (the identity start would hide them),
    and left-padded conditioned prompts: everything it writes is explanation, where the VAD path is active."""
    model, processor = build_tiny(tokenizer=copy.deepcopy(tokenizer))
    with torch.no_grad():
        model.vad_fusion.weight[:, -3:].normal_(0.0, 0.5, generator=torch.Generator().manual_seed(1))
    batch = processor(images=random_images(4, seed=3), emotions=CONDITIONED)
    return model.eval(), processor, batch


@torch.no_grad()
def test_greedy_decoding_equals_the_recomputing_loop(trained_tiny, live_vad):
    trained, processor, images = trained_tiny
    cases = [(trained, processor(images=images)), (trained, processor(images=images, emotions=CONDITIONED)), live_vad[::2]]
    for model, batch in cases:
        memory = model.get_image_features(batch["pixel_values"]).last_hidden_state
        expected = reference_greedy(model, memory, batch["input_ids"], batch["attention_mask"], 16)
        generated = model.generate(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], encoder_hidden_states=memory, max_new_tokens=16
        )
        assert torch.equal(generated, expected)
        static = model.generate(**batch, max_new_tokens=16, cache_implementation="static")
        assert torch.equal(static, expected)


@torch.no_grad()
def test_beam_search_sampling_and_assisted_decoding_equal_uncached_generation(live_vad, trained_tiny):
    model, _, batch = live_vad
    options = dict(max_new_tokens=12, min_new_tokens=12)
    for mode in ({"num_beams": 3}, {"num_beams": 2, "cache_implementation": "static"}, {"do_sample": True, "top_k": 20}):
        torch.manual_seed(5)
        cached = model.generate(**batch, **options, **mode)
        uncached_mode = {key: value for key, value in mode.items() if key != "cache_implementation"}
        torch.manual_seed(5)
        uncached = model.generate(**batch, **options, **uncached_mode, use_cache=False)
        assert torch.equal(cached, uncached), mode
    # Assisted decoding checks several candidate tokens in one cached step and crops the cache back after a miss.
    trained, processor, images = trained_tiny
    small = copy.deepcopy(trained)
    with torch.no_grad():
        small.language_model.transformer.h[1].mlp.c_proj.weight.mul_(0.5)  # an assistant that is sometimes wrong
    one = processor(images=images[2:3], emotions=["something else"])
    assisted = trained.generate(**one, max_new_tokens=12, assistant_model=small)
    assert torch.equal(assisted, trained.generate(**one, max_new_tokens=12, use_cache=False))


@torch.no_grad()
def test_the_bidirectional_encoder_generates_as_the_recomputing_loop(tokenizer):
    """The bidirectional VAD encoder changes past positions at every step, so generation runs without a cache (even
    when one is asked for) and recomputes the whole sequence, as the loop does."""
    model, processor = build_tiny(tokenizer=copy.deepcopy(tokenizer), vad_encoder_causal=False)
    with torch.no_grad():
        model.vad_fusion.weight[:, -3:].normal_(0.0, 0.5, generator=torch.Generator().manual_seed(1))
    model.eval()
    batch = processor(images=random_images(4, seed=3), emotions=CONDITIONED)
    memory = model.get_image_features(batch["pixel_values"]).last_hidden_state
    expected = reference_greedy(model, memory, batch["input_ids"], batch["attention_mask"], 12)
    for options in ({}, {"use_cache": True}, {"num_beams": 1, "cache_implementation": "static"}):
        generated = model.generate(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], encoder_hidden_states=memory, max_new_tokens=12, **options
        )
        assert torch.equal(generated, expected), options


@torch.no_grad()
@pytest.mark.parametrize("cache_implementation", [None, "static"])
def test_chunked_prefill_of_a_prompt_that_reaches_into_the_explanation(live_vad, cache_implementation):
    """A chunked prefill hands the model one chunk of the prompt at a time: the chunks after the connector are still
    explanation (the prompt's segments go along), and a static cache allocated before its first chunk is empty."""
    model, processor, _ = live_vad
    batch = processor(images=random_images(1, seed=4), emotions=["fear"], explanations=["the storm is frightening and dark"])
    prompt = {"input_ids": batch["input_ids"][:, :-1], "attention_mask": batch["attention_mask"][:, :-1]}
    connector = prompt["input_ids"][0].tolist().index(processor.connector_token_ids[0])
    assert prompt["input_ids"].shape[1] - connector > 6  # explanation tokens fill whole chunks after the connector's
    memory = model.get_image_features(batch["pixel_values"]).last_hidden_state
    expected = reference_greedy(model, memory, prompt["input_ids"], prompt["attention_mask"], 8)
    chunked = model.generate(
        **prompt, encoder_hidden_states=memory, max_new_tokens=8, prefill_chunk_size=3, cache_implementation=cache_implementation
    )
    assert torch.equal(chunked, expected)


def live_encoder(tokenizer, heads):
    """A tiny model whose VAD encoder has random weights everywhere (PyTorch starts the attention biases at zero and
    the norms at identity, which would hide the folding of biases and norms into a decoding step's weights)."""
    model, processor = build_tiny(tokenizer=copy.deepcopy(tokenizer), vad_encoder_heads=heads)
    generator = torch.Generator().manual_seed(2)
    with torch.no_grad():
        model.vad_fusion.weight[:, -3:].normal_(0.0, 0.5, generator=generator)
        for parameter in model.vad_encoder.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.3)
    return model.eval(), processor


@torch.no_grad()
@pytest.mark.parametrize("heads", [1, 3])
@pytest.mark.parametrize("layer_kind", ["dynamic", "static"])
def test_cached_vad_steps_equal_the_whole_sequence_encoder(tokenizer, heads, layer_kind):
    """The VAD features of a cached step (folded weights, keys with their mask column) equal the whole-sequence
    encoder's (bit-identical to nn.TransformerEncoder) at every real token, to float rounding: a left-padded prompt,
    then a chunk of several tokens whose first ones are still padding in one row, then one token per step."""
    model, _ = live_encoder(tokenizer, heads)
    encoder = model.vad_encoder
    generator = torch.Generator().manual_seed(0)
    values = torch.rand(3, 11, 3, generator=generator) * 2 - 1
    mask = torch.ones(3, 11, dtype=torch.long)
    mask[0, :2] = 0
    mask[2, :5] = 0  # padding runs past the prompt into the chunk
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    whole = encoder(values, mask)

    def new_layer():
        return StaticLayer(max_cache_len=12) if layer_kind == "static" else DynamicLayer()

    layers = [new_layer() for _ in encoder.layers]
    pieces = [encoder(values[:, :3], mask[:, :3], cache_layers=layers)]  # the prompt
    pieces.append(encoder(values[:, 3:7], mask[:, :7], positions[:, 3:7], layers))  # a chunk of four tokens
    for end in range(8, 12):  # decoding steps
        pieces.append(encoder(values[:, end - 1 : end], mask[:, :end], positions[:, end - 1 : end], layers))
    cached = torch.cat(pieces, 1)
    real = mask.bool()
    torch.testing.assert_close(cached[real], whole[real], rtol=1e-5, atol=1e-5)
    assert torch.isfinite(cached).all()
    # Each layer holds every token once: keys with their mask column, values through the output projection.
    assert {int(layer.get_seq_length()) for layer in layers} == {11}
    assert layers[0].keys.shape == (3, heads, 12 if layer_kind == "static" else 11, 3 // heads + 1)


@torch.no_grad()
@pytest.mark.parametrize("heads", [1, 3])
def test_multi_head_vad_encoder_generates_as_the_recomputing_loop(tokenizer, heads):
    """Tokens of cached generation (dynamic and static cache) equal the recomputing loop's, and the scores of the
    cached steps equal those of generation without a cache to float rounding."""
    model, processor = live_encoder(tokenizer, heads)
    batch = processor(images=random_images(4, seed=3), emotions=CONDITIONED)
    memory = model.get_image_features(batch["pixel_values"]).last_hidden_state
    prompt = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"], "encoder_hidden_states": memory}
    expected = reference_greedy(model, memory, batch["input_ids"], batch["attention_mask"], 12)
    options = dict(max_new_tokens=12, output_scores=True, return_dict_in_generate=True)
    uncached = model.generate(**prompt, **options, use_cache=False)
    assert torch.equal(uncached.sequences, expected)
    for cache_implementation in (None, "static"):
        cached = model.generate(**prompt, **options, cache_implementation=cache_implementation)
        assert torch.equal(cached.sequences, expected), cache_implementation
        torch.testing.assert_close(torch.stack(cached.scores), torch.stack(uncached.scores), rtol=1e-4, atol=1e-5)


@torch.no_grad()
def test_the_decoding_weights_are_folded_once_per_generate_call(live_vad):
    """The folded VAD weights are made once per `generate` call, not at every step (nor are they left behind)."""
    model, _, batch = live_vad
    calls = []
    fold = model.vad_encoder.step_weights
    model.vad_encoder.step_weights = lambda: calls.append(1) or fold()
    try:
        model.generate(**batch, max_new_tokens=6, min_new_tokens=6)
    finally:
        del model.vad_encoder.step_weights
    assert len(calls) == 1
    assert model._decoding_weights is None


@torch.no_grad()
def test_the_vad_encoder_runs_over_the_new_token_only(live_vad):
    """A decoding step feeds the VAD encoder its new token (it used to rerun over the whole sequence), and the
    encoder's keys and values ride in the decoder's self-attention cache, as long as the decoder's."""
    model, _, batch = live_vad
    lengths = []
    hook = model.vad_encoder.register_forward_pre_hook(lambda module, args: lengths.append(args[0].shape[1]))
    try:
        out = model.generate(**batch, max_new_tokens=6, min_new_tokens=6, return_dict_in_generate=True)
    finally:
        hook.remove()
    prompt = batch["input_ids"].shape[1]
    assert lengths == [prompt, 1, 1, 1, 1, 1]
    layers = out.cache.self_attention_cache.layers
    text_layers, vad_layers = model.config.text_config.n_layer, model.config.vad_encoder_layers
    assert len(layers) == text_layers + vad_layers
    # The last token is returned but not yet fed back: the cache covers the prompt and 5 tokens.
    assert {layer.get_seq_length() for layer in layers} == {prompt + 5}
    heads = model.config.vad_encoder_heads
    # Per head: keys with the mask column, values through the output projection (SevlmVadEncoder's docstring).
    assert layers[-1].keys.shape == (4, heads, prompt + 5, 3 // heads + 1)
    assert layers[-1].values.shape == (4, heads, prompt + 5, 3)


@torch.no_grad()
def test_continuing_from_a_returned_cache_equals_the_whole_forward(live_vad):
    """Several new tokens after a cached, left-padded prefix: each reads the cache and the new tokens before it."""
    model, _, batch = live_vad
    ids, mask, pixels = batch["input_ids"], batch["attention_mask"], batch["pixel_values"]
    continuation = torch.tensor([[5, 9, 14]] * 4) + torch.arange(4)[:, None]
    full_ids = torch.cat([ids, continuation], -1)
    full_mask = torch.cat([mask, torch.ones_like(continuation)], -1)
    positions = (full_mask.cumsum(-1) - 1).clamp(min=0)
    whole = model(input_ids=full_ids, attention_mask=full_mask, position_ids=positions, pixel_values=pixels, use_cache=False)
    prefix = model(input_ids=ids, attention_mask=mask, position_ids=positions[:, : ids.shape[1]], pixel_values=pixels, use_cache=True)
    step = model(
        input_ids=continuation,
        attention_mask=full_mask,
        position_ids=positions[:, ids.shape[1] :],
        token_type_ids=model.segment_ids(full_ids)[:, ids.shape[1] :],
        pixel_values=pixels,
        cache=prefix.cache,
    )
    torch.testing.assert_close(step.logits, whole.logits[:, ids.shape[1] :], rtol=1e-4, atol=1e-5)


@torch.no_grad()
def test_half_precision_decoding_stays_finite_with_left_padding(live_vad):
    model, _, batch = live_vad
    half = copy.deepcopy(model).half()
    out = half.generate(
        **{key: value.half() if value.is_floating_point() else value for key, value in batch.items()},
        max_new_tokens=8,
        output_scores=True,
        return_dict_in_generate=True,
    )
    assert all(torch.isfinite(scores).all() for scores in out.scores)


@pytest.mark.parametrize("connector", [" because", " because of"])
def test_the_newest_tokens_segment_equals_the_whole_sequence_segments(tokenizer, connector):
    from helpers import tiny_vision_config

    from processing_sevlm import SevlmProcessor

    processor = SevlmProcessor.from_vision_text(tiny_vision_config(), copy.deepcopy(tokenizer), connector_text=connector)
    sequences = processor.sequence_format
    generator = torch.Generator().manual_seed(0)
    rows = torch.randint(0, len(processor.tokenizer), (64, 9), generator=generator)
    connector_ids = torch.tensor(sequences.connector_token_ids)
    for row in range(0, 64, 3):  # the connector somewhere in a third of the rows, at the very end in some
        start = int(torch.randint(0, 9 - len(connector_ids) + 1, (), generator=generator))
        rows[row, start : start + len(connector_ids)] = connector_ids
    for length in range(1, 10):
        ids = rows[:, :length]
        assert torch.equal(sequences.last_segment_ids(ids), sequences.segment_ids(ids)[:, -1:]), length


def test_compiled_decoding_gives_the_eager_results(trained_tiny):
    """predict_batch(compile=...) decodes with a static cache and a compiled step (aot_eager traces what inductor
    would compile, without its slow code generation on a CPU): the same results as eager decoding, and prompts of
    other emotions reuse the compiled step (the cache is sized for the longest)."""
    model, processor, images = trained_tiny
    config = CompileConfig(fullgraph=True, dynamic=False, backend="aot_eager", mode=None)
    torch._dynamo.reset()
    emotions = [None, "something else", None, "awe"]
    with torch._dynamo.config.patch(recompile_limit=1):
        compiled = [
            predict_batch(model, processor, images, emotions=asked, compile=config) for asked in (None, emotions)
        ]
    assert hasattr(model, "_compiled_call")  # the compiled step ran
    for asked, results in zip((None, emotions), compiled):
        assert results == predict_batch(model, processor, images, emotions=asked)
    assert [result["explanation"] for result in compiled[0][:3]] == [
        "the woman looks lonely and sad",
        "the mountain is huge and majestic",
        "it is strange and I do not know why",
    ]
    options = compiled_generate_kwargs(model, {"max_new_tokens": 7}, True)
    assert options["cache_implementation"] == "static" and options["compile_config"]._compile_all_devices
    assert options["max_cache_len"] == len(model.sequence_format.prompt(model.config.emotions.index("something else"))) + 7
    with pytest.raises(ValueError, match="static cache"):
        compiled_generate_kwargs(model, {"cache_implementation": "dynamic"}, True)
    # The pipeline takes the option at creation or per call and hands it to predict_batch.
    pipe = SevlmArtEmotionPipeline(model=model, processor=processor, compile=config)
    assert pipe._forward_params["compile"] is config
