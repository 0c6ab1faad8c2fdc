import copy
import itertools
import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from helpers import (
    EXPLANATIONS,
    FIXTURE_LEXICON,
    REPO_ROOT,
    build_tiny,
    corpus_texts,
    overfit,
    random_images,
    tiny_text_config,
    tiny_vision_config,
)
from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel, CLIPVisionConfig, GPT2Config, GPT2LMHeadModel

from configuration_sevlm import SevlmConfig
from modeling_sevlm import SevlmForConditionalGeneration
from processing_sevlm import SevlmProcessor
from sevlm.tokenizer import train_tokenizer
from sevlm.vad import build_vad_table, load_vad_lexicon, lookup_vad


def paired_batch(processor, pairs=3, seed=0):
    """`pairs` paintings, two annotations each with different emotions; one image per pair."""
    images = random_images(pairs, seed=seed)
    emotions, explanations = [], []
    for k in range(pairs):
        emotions += [processor.emotions[k % 9], processor.emotions[(k + 4) % 9]]
        explanations += [EXPLANATIONS[k % 10], EXPLANATIONS[(k + 5) % 10]]
    batch = processor.encode_text(emotions, explanations)
    batch["pixel_values"] = processor.preprocess_images(images)
    batch["image_index"] = torch.arange(pairs).repeat_interleave(2)
    return batch


# ----------------------------------------------------------------------------------------------------- losses
@pytest.mark.parametrize("vad_embedding,vad_loss,contrastive", list(itertools.product([True, False], repeat=3)))
def test_loss_terms_follow_switches(tokenizer, vad_embedding, vad_loss, contrastive):
    model, processor = build_tiny(
        tokenizer=copy.deepcopy(tokenizer),
        use_vad_embedding=vad_embedding,
        use_vad_loss=vad_loss,
        use_contrastive_loss=contrastive,
        vad_loss_weight=0.5,
        contrastive_loss_weight=2.0,
    )
    batch = paired_batch(processor)
    torch.manual_seed(0)
    out = model(**batch)
    batch_size, length = batch["input_ids"].shape
    assert out.logits.shape == (batch_size, length, len(processor.tokenizer))
    assert out.lm_loss is not None and torch.isfinite(out.lm_loss)
    # A random model's next-token loss is about log(vocab).
    assert abs(out.lm_loss.item() - torch.log(torch.tensor(float(len(processor.tokenizer)))).item()) < 1.0
    assert (out.vad_loss is not None) == vad_loss
    assert (out.contrastive_loss is not None) == contrastive
    expected = out.lm_loss
    if vad_loss:
        assert out.vad_loss.item() > 0
        assert out.vad_predictions.shape == (batch_size, length, 3)
        expected = expected + 0.5 * out.vad_loss
    if contrastive:
        # three candidates each (true, same painting other emotion, other painting): about log(3) at init
        assert out.contrastive_scores.shape == (batch_size, 3)
        assert abs(out.contrastive_loss.item() - torch.log(torch.tensor(3.0)).item()) < 0.2
        expected = expected + 2.0 * out.contrastive_loss
    torch.testing.assert_close(out.loss, expected)


def test_single_pair_has_one_negative(tiny):
    model, processor = tiny
    out = model(**paired_batch(processor, pairs=1))
    assert out.contrastive_scores.shape == (2, 2)


def test_vad_loss_matches_hand_computation(tiny):
    model, processor = tiny
    model.config.use_contrastive_loss = False
    batch = processor(images=random_images(1), emotions=["sadness"], explanations=["the colors are dark and gloomy"])
    out = model(**batch)
    labels, types = batch["labels"][0], batch["token_type_ids"][0]
    errors = []
    for t in range(labels.shape[0] - 1):
        target = model.vad_table[labels[t + 1].clamp(min=0)]
        if labels[t + 1] != -100 and types[t + 1] == processor.explanation_token_id and target.abs().sum() > 0:
            errors.append(((out.vad_predictions[0, t] - target) ** 2).mean())
    assert len(errors) >= 2  # "dark" and "gloomy" are in the fixture lexicon
    torch.testing.assert_close(out.vad_loss, torch.stack(errors).mean())


def test_contrastive_needs_pairs(tiny):
    model, processor = tiny
    batch = paired_batch(processor)
    with pytest.raises(ValueError, match="image_index"):
        model(**{k: v for k, v in batch.items() if k != "image_index"})
    batch["image_index"] = torch.tensor([0, 1, 1, 2, 2, 0])
    with pytest.raises(ValueError, match="pairs"):
        model(**batch)


def test_gradients_reach_decoder_and_vad_modules_not_frozen_vision(tiny):
    model, processor = tiny
    model.train()
    batch = paired_batch(processor)
    model(**batch).loss.backward()
    # The fusion starts silent on its VAD columns (identity on the embedding): they learn first...
    hidden = model.config.text_config.n_embd
    assert model.vad_fusion.weight.grad[:, hidden:].abs().sum() > 0
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in model.vad_encoder.parameters())
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    optimizer.step()
    optimizer.zero_grad()
    # ...and from the second step on the VAD encoder learns through them.
    model(**batch).loss.backward()
    for name in ("language_model", "vad_encoder", "vad_fusion", "vad_head", "contrastive_head"):
        grads = [p.grad for p in getattr(model, name).parameters() if p.requires_grad]
        assert grads and any(g is not None and g.abs().sum() > 0 for g in grads), name
    assert all(not p.requires_grad and p.grad is None for p in model.vision_model.parameters())


def test_unfrozen_vision_gets_gradients(tokenizer):
    model, processor = build_tiny(tokenizer=copy.deepcopy(tokenizer), freeze_vision=False)
    model(**paired_batch(processor)).loss.backward()
    assert all(p.requires_grad for p in model.vision_model.parameters())
    assert model.vision_model.embeddings.patch_embedding.weight.grad.abs().sum() > 0


def test_vad_fusion_starts_as_identity(tiny):
    model, processor = tiny
    embeddings = torch.randn(2, 5, model.config.text_config.n_embd)
    torch.testing.assert_close(model.vad_fusion(embeddings, torch.randn(2, 5, 3)), embeddings)


def test_image_projection_when_widths_differ(tokenizer):
    processor = SevlmProcessor.from_vision_text(tiny_vision_config(hidden_size=48), copy.deepcopy(tokenizer))
    model = SevlmForConditionalGeneration.from_vision_text(
        tiny_vision_config(hidden_size=48), tiny_text_config(), processor, vad_table=build_vad_table(processor.tokenizer, FIXTURE_LEXICON)
    )
    out = model(**paired_batch(processor))
    assert out.image_embeds.shape[-1] == 32 and torch.isfinite(out.loss)


# ------------------------------------------------------------------------------------------------- causality
def _last_token_swap(model, processor):
    """Two sequences equal but for the last explanation token, whose VADs differ in the table."""
    model.eval()
    model.config.use_contrastive_loss = False
    first = processor(images=random_images(1), emotions=["sadness"], explanations=["the woman looks lonely and sad"])
    ids = first["input_ids"].clone()
    happy = processor.tokenizer(" happy", add_special_tokens=False)["input_ids"]
    assert len(happy) == 1 and model.vad_table[happy[0]].abs().sum() > 0
    last = ids.shape[1] - 2  # the token before <eos>
    assert not torch.equal(model.vad_table[ids[0, last]], model.vad_table[happy[0]])
    second = dict(first)
    second["input_ids"] = ids.clone()
    second["input_ids"][0, last] = happy[0]
    return first, second, last


@pytest.mark.parametrize("causal", [True, False])
def test_last_token_only_reaches_earlier_positions_with_bidirectional_encoder(tokenizer, causal):
    model, processor = build_tiny(tokenizer=copy.deepcopy(tokenizer), vad_encoder_causal=causal)
    # A trained fusion reads the VAD features; the identity start would hide them.
    torch.nn.init.normal_(model.vad_fusion.weight, std=0.5)
    first, second, last = _last_token_swap(model, processor)
    with torch.no_grad():
        logits_a = model(**first).logits[0, :last]
        logits_b = model(**second).logits[0, :last]
    if causal:
        torch.testing.assert_close(logits_a, logits_b, rtol=0, atol=1e-6)
    else:
        assert (logits_a - logits_b).abs().max() > 1e-4


# ------------------------------------------------------------------------------------------------ generation
def test_greedy_generation_same_with_and_without_cache(trained_tiny):
    model, processor, images = trained_tiny
    pixel_values = processor(images=images)["pixel_values"]
    cached = model.generate(pixel_values=pixel_values)
    uncached = model.generate(pixel_values=pixel_values, use_cache=False)
    assert torch.equal(cached, uncached)
    results = processor.post_process_generation(cached)
    # The tiny model learned its 4 captions: generation reaches the explanation segment and ends.
    assert results[2] == {"emotion": "something else", "explanation": EXPLANATIONS[2]}
    assert sum(r["explanation"] in EXPLANATIONS for r in results) >= 3


def test_beam_search_and_conditioned_generation_match_uncached(trained_tiny):
    model, processor, images = trained_tiny
    pixel_values = processor(images=images)["pixel_values"]
    beams = model.generate(pixel_values=pixel_values, num_beams=3)
    assert torch.equal(beams, model.generate(pixel_values=pixel_values, num_beams=3, use_cache=False))
    # Emotion-conditioned prompts have different lengths: left padding must not change the result.
    conditioned = processor(images=images, emotions=["awe", "something else", "fear", "sadness"])
    assert conditioned["attention_mask"][0, 0] == 0  # "awe" is shorter than "something else"
    out = model.generate(**conditioned)
    assert torch.equal(out, model.generate(**conditioned, use_cache=False))
    assert [r["emotion"] for r in processor.post_process_generation(out)] == ["awe", "something else", "fear", "sadness"]
    single = model.generate(**processor(images=images[:1], emotions=["awe"]))
    assert processor.post_process_generation(single) == processor.post_process_generation(out[:1])


def test_sampling_runs_and_is_seeded(trained_tiny):
    model, processor, images = trained_tiny
    pixel_values = processor(images=images)["pixel_values"]
    torch.manual_seed(3)
    first = model.generate(pixel_values=pixel_values, do_sample=True, top_k=5, max_new_tokens=8)
    torch.manual_seed(3)
    second = model.generate(pixel_values=pixel_values, do_sample=True, top_k=5, max_new_tokens=8)
    assert torch.equal(first, second)


def test_image_reaches_every_generation_step(trained_tiny):
    """Cross-attention memory must reach cached steps: different images give different continuations."""
    model, processor, images = trained_tiny
    pixel_values = processor(images=images)["pixel_values"]
    features = model.get_image_features(pixel_values).last_hidden_state
    prompt = model.prompt(1)
    steps = []
    for index in (0, 1):
        out = model.generate(encoder_hidden_states=features[index : index + 1], input_ids=prompt, max_new_tokens=12)
        steps.append(out[0, prompt.shape[1] + 2 :].tolist())
    assert steps[0] != steps[1]


def test_bidirectional_encoder_generates_without_cache(tokenizer):
    model, processor = build_tiny(tokenizer=copy.deepcopy(tokenizer), vad_encoder_causal=False)
    model, images = overfit(model, processor)
    pixel_values = processor(images=images)["pixel_values"]
    assert torch.equal(model.generate(pixel_values=pixel_values), model.generate(pixel_values=pixel_values, use_cache=False))


def test_generation_needs_an_image(tiny):
    model, _ = tiny
    with pytest.raises(ValueError, match="image"):
        model.generate()
    with pytest.raises(ValueError, match="image"):
        model(input_ids=model.prompt(1))


def test_segment_ids_match_processor(tiny):
    model, processor = tiny
    batch = processor.encode_text(["something else", "awe"], ["the storm is frightening because of the dark", "calm"])
    assert torch.equal(model.segment_ids(batch["input_ids"]), batch["token_type_ids"])


def test_multi_token_connector(tokenizer):
    processor = SevlmProcessor.from_vision_text(tiny_vision_config(), copy.deepcopy(tokenizer), connector_text=" because of")
    assert len(processor.connector_token_ids) == 2
    model = SevlmForConditionalGeneration.from_vision_text(
        tiny_vision_config(), tiny_text_config(), processor, vad_table=build_vad_table(processor.tokenizer, FIXTURE_LEXICON)
    )
    batch = processor.encode_text(["sadness"], ["the dark"])
    types = batch["token_type_ids"][0].tolist()
    connector_end = batch["input_ids"][0].tolist().index(processor.connector_token_ids[1])
    assert types[connector_end - 1] == processor.emotion_token_id and types[connector_end] == processor.explanation_token_id
    assert torch.equal(model.segment_ids(batch["input_ids"]), batch["token_type_ids"])
    assert model.segment_ids(batch["input_ids"][:, :1]).tolist() == [[processor.emotion_token_id]]


# -------------------------------------------------------------------------------------------- emotion scores
def test_emotion_scores_are_probabilities(trained_tiny):
    model, processor, images = trained_tiny
    scores = model.emotion_scores(processor(images=images)["pixel_values"])
    assert scores.shape == (4, 9)
    torch.testing.assert_close(scores.sum(-1), torch.ones(4))
    # The tiny model learned "something else" for image 2 (a two-token class name).
    assert scores[2].argmax().item() == processor.emotions.index("something else")


def test_custom_three_emotions_end_to_end():
    emotions = ["joy", "gloom", "something else"]
    model, processor = build_tiny(emotions=emotions)
    assert model.config.emotions == emotions
    images = random_images(3)
    batch = processor(images=images, emotions=emotions, explanations=EXPLANATIONS[:3])
    model.config.use_contrastive_loss = False
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(80):
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    pixel_values = processor(images=images)["pixel_values"]
    scores = model.emotion_scores(pixel_values)
    assert scores.shape == (3, 3)
    assert scores.argmax(-1).tolist() == [0, 1, 2]
    results = processor.post_process_generation(model.generate(pixel_values=pixel_values))
    assert [r["emotion"] for r in results] == emotions


# ------------------------------------------------------------------------------------------------ VAD table
def test_vad_lexicon_file_is_read_on_bipolar_scale():
    lexicon = load_vad_lexicon(FIXTURE_LEXICON)
    assert lexicon["sad"] == pytest.approx((2 * 0.10 - 1, 2 * 0.30 - 1, 2 * 0.22 - 1))
    bipolar = load_vad_lexicon({"Sad": (-0.8, -0.4, -0.56), "calm": (0.64, -0.76, 0.1)})
    assert bipolar["sad"] == (-0.8, -0.4, -0.56)  # already bipolar: kept


def test_vad_lookup_known_unknown_and_lemmatised():
    lexicon = load_vad_lexicon(FIXTURE_LEXICON)
    assert lookup_vad(lexicon, "Sad ") == lexicon["sad"]
    assert lookup_vad(lexicon, "colors") == lexicon["color"]  # plural -> lemma
    assert lookup_vad(lexicon, "running") == lexicon["run"]  # verb form -> lemma
    assert lookup_vad(lexicon, "happier") == lexicon["happy"]  # comparative -> lemma
    assert lookup_vad(lexicon, "zebra") is None
    assert lookup_vad(lexicon, "") is None


def test_vad_table_rows(tokenizer):
    lexicon = load_vad_lexicon(FIXTURE_LEXICON)
    table = build_vad_table(tokenizer, lexicon)
    assert table.shape == (len(tokenizer), 3)
    sad = tokenizer(" sad", add_special_tokens=False)["input_ids"]
    assert len(sad) == 1
    torch.testing.assert_close(table[sad[0]], torch.tensor(lexicon["sad"]))
    the = tokenizer(" the", add_special_tokens=False)["input_ids"][0]
    assert table[the].abs().sum() == 0  # not in the lexicon
    assert table[tokenizer.eos_token_id].abs().sum() == 0  # special token


def test_nrc_vad_lexicon(lexicon_path, tokenizer):
    lexicon = load_vad_lexicon(lexicon_path)
    assert all(-1.0 <= x <= 1.0 for scores in lexicon.values() for x in scores)
    assert lookup_vad(lexicon, "sadness")[0] < 0 < lookup_vad(lexicon, "happy")[0]
    assert build_vad_table(tokenizer, lexicon).abs().sum() > 0


def test_vad_lexicon_errors(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("Word\tValence\tArousal\tDominance\nsad\t0.1\t0.2\n")
    with pytest.raises(ValueError, match=r"bad.txt:2"):
        load_vad_lexicon(bad)
    out_of_range = tmp_path / "range.txt"
    out_of_range.write_text("Word\tValence\tArousal\tDominance\nsad\t3\t0.2\t0.1\n")
    with pytest.raises(ValueError, match=r"\[0, 1\] or \[-1, 1\]"):
        load_vad_lexicon(out_of_range)
    with pytest.raises(FileNotFoundError, match="NRC-VAD"):
        load_vad_lexicon(tmp_path / "missing.txt")


def test_vad_table_is_saved_and_resized(tiny, tmp_path):
    model, processor = tiny
    assert model.vad_table.abs().sum() > 0
    before = model.vad_table.clone()
    model.resize_token_embeddings(model.vad_table.shape[0] + 5)
    assert model.vad_table.shape[0] == before.shape[0] + 5
    torch.testing.assert_close(model.vad_table[: before.shape[0]], before)
    model.save_pretrained(tmp_path)
    reloaded = SevlmForConditionalGeneration.from_pretrained(tmp_path)
    torch.testing.assert_close(reloaded.vad_table, model.vad_table)


# --------------------------------------------------------------------------------------- pretrained parts
def test_from_vision_text_loads_pretrained_parts(tmp_path, tokenizer):
    clip = CLIPModel(
        CLIPConfig(
            vision_config=tiny_vision_config().to_dict(),
            text_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2),
        )
    )
    clip.save_pretrained(tmp_path / "clip")
    # As in openai/clip-vit-base-patch16: shortest-edge resize + centre crop, which SEVLM replaces.
    CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(tmp_path / "clip")
    gpt2 = GPT2LMHeadModel(tiny_text_config(vocab_size=len(tokenizer) - 3))
    gpt2.save_pretrained(tmp_path / "gpt2")
    processor = SevlmProcessor.from_vision_text(tmp_path / "clip", copy.deepcopy(tokenizer))
    processor.save_pretrained(tmp_path / "processor")
    assert processor.image_processor.size == {"height": 32, "width": 32} and not processor.image_processor.do_center_crop
    model = SevlmForConditionalGeneration.from_vision_text(tmp_path / "clip", tmp_path / "gpt2", processor)
    torch.testing.assert_close(
        model.vision_model.embeddings.patch_embedding.weight, clip.vision_model.embeddings.patch_embedding.weight
    )
    torch.testing.assert_close(model.language_model.transformer.h[0].attn.c_attn.weight, gpt2.transformer.h[0].attn.c_attn.weight)
    assert model.get_input_embeddings().num_embeddings == len(processor.tokenizer)
    assert model.language_model.lm_head.weight is model.get_input_embeddings().weight


def test_real_size_parameter_count():
    """CLIP ViT-B/16 (85.8M) + distilGPT-2 with cross-attention (96.1M) + SEVLM modules, from configs."""
    tokenizer = train_tokenizer(corpus_texts(), vocab_size=1000)
    vision = CLIPVisionConfig(image_size=224, patch_size=16)
    text = GPT2Config(n_layer=6)
    processor = SevlmProcessor.from_vision_text(vision, tokenizer)
    with torch.device("meta"):
        model = SevlmForConditionalGeneration(
            SevlmConfig(vision_config=vision, text_config=text, **processor.token_id_config())
        )
    vision_params = sum(p.numel() for p in model.vision_model.parameters())
    text_params = sum(p.numel() for p in model.language_model.parameters())
    total = sum(p.numel() for p in model.parameters())
    assert round(vision_params / 1e6, 1) == 85.8
    assert round(text_params / 1e6, 1) == 96.1
    assert 182e6 < total < 190e6


# ------------------------------------------------------------------------------------------- remote code
@pytest.mark.slow
def test_saved_folder_loads_in_fresh_process(trained_tiny, tmp_path):
    model, processor, images = trained_tiny
    folder = tmp_path / "sevlm-tiny"
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    assert (folder / "model.safetensors").is_file() and not list(folder.glob("*.bin"))
    for name in ("configuration_sevlm.py", "modeling_sevlm.py", "processing_sevlm.py"):
        assert (folder / name).is_file()
    config = json.loads((folder / "config.json").read_text())
    assert config["auto_map"]["AutoModel"] == "modeling_sevlm.SevlmForConditionalGeneration"
    pixel_values = processor(images=images)["pixel_values"]
    torch.save(pixel_values, tmp_path / "pixels.pt")
    expected = model.generate(pixel_values=pixel_values).tolist()
    expected_scores = model.emotion_scores(pixel_values).tolist()
    script = textwrap.dedent(
        f"""
        import json, sys, torch
        assert not any("{REPO_ROOT}" == p for p in sys.path)
        from transformers import AutoConfig, AutoModel, AutoModelForImageTextToText, AutoProcessor
        config = AutoConfig.from_pretrained("sevlm-tiny", trust_remote_code=True)
        model = AutoModel.from_pretrained("sevlm-tiny", trust_remote_code=True).eval()
        same = AutoModelForImageTextToText.from_pretrained("sevlm-tiny", trust_remote_code=True)
        processor = AutoProcessor.from_pretrained("sevlm-tiny", trust_remote_code=True)
        pixels = torch.load("pixels.pt", weights_only=True)
        print(json.dumps({{
            "config": type(config).__name__, "model": type(model).__name__, "processor": type(processor).__name__,
            "same_class": type(same).__name__,
            "ids": model.generate(pixel_values=pixels).tolist(),
            "scores": model.emotion_scores(pixels).tolist(),
            "processed": processor(images=[torch.zeros(3, 8, 8)])["pixel_values"].shape[-1],
        }}))
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf_home"))
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL
    )
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded["config"] == "SevlmConfig" and loaded["model"] == loaded["same_class"] == "SevlmForConditionalGeneration"
    assert loaded["processor"] == "SevlmProcessor"
    assert loaded["ids"] == expected
    torch.testing.assert_close(torch.tensor(loaded["scores"]), torch.tensor(expected_scores))
    assert loaded["processed"] == 32


def test_gradient_checkpointing_gives_the_same_gradients(tiny):
    model, processor = tiny
    model.config.use_contrastive_loss = False
    batch = processor(images=random_images(2), emotions=["awe", "fear"], explanations=EXPLANATIONS[1:3])
    model.eval()  # no dropout: both passes must match exactly
    model(**batch).loss.backward()
    plain = model.language_model.transformer.h[0].attn.c_attn.weight.grad.clone()
    model.zero_grad()
    model.gradient_checkpointing_enable()
    model.train()
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    model(**batch).loss.backward()
    assert model.language_model.transformer.gradient_checkpointing
    torch.testing.assert_close(model.language_model.transformer.h[0].attn.c_attn.weight.grad, plain)


# ------------------------------------------------------------------------------------- lexicons of any language
FIXTURE_LEXICON_DE = FIXTURE_LEXICON.with_name("vad_fixture_de.txt")
GERMAN_TEXTS = [
    f" die emotion ist {e} weil {x}"
    for e in ("freude", "angst", "ruhe")
    for x in ("der himmel ist düster", "die farben sind dunkel", "voller hass und hasses", "Übermut und freude")
] * 10


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf"])
def test_non_finite_lexicon_values_are_rejected_naming_file_and_line(tmp_path, bad):
    path = tmp_path / "lexicon.txt"
    path.write_text(f"Word\tValence\tArousal\tDominance\ncalm\t0.8\t0.1\t0.5\nsad\t0.1\t{bad}\t0.2\n")
    with pytest.raises(ValueError, match=r"lexicon\.txt:3: non-finite"):
        load_vad_lexicon(path)
    with pytest.raises(ValueError, match=r"'sad' has a non-finite score"):
        load_vad_lexicon({"calm": (0.8, 0.1, 0.5), "sad": (0.1, float(bad), 0.2)})


def test_non_english_lexicon_looks_up_surface_forms_only():
    german = load_vad_lexicon(FIXTURE_LEXICON_DE, vad_lexicon_language="de")
    assert german.language == "de"
    assert lookup_vad(german, "Düster") == german["düster"] and lookup_vad(german, "Übermut") == german["übermut"]
    # English lemmatisation would map the German genitive "hasses" to "hass"; German lookups take surface forms.
    assert lookup_vad(german, "hasses") is None and lookup_vad(german, "farben") is None
    assert lookup_vad(german, "hasses", vad_lexicon_language="en") == german["hass"]
    english = load_vad_lexicon(FIXTURE_LEXICON)
    assert english.language == "en" and lookup_vad(english, "colors") == english["color"]

    tokenizer = train_tokenizer(GERMAN_TEXTS, vocab_size=400)
    table = build_vad_table(tokenizer, german)
    token = lambda word: tokenizer(" " + word, add_special_tokens=False)["input_ids"]  # noqa: E731
    assert len(token("düster")) == 1 and len(token("hasses")) == 1
    torch.testing.assert_close(table[token("düster")[0]], torch.tensor(german["düster"]))
    assert table[token("hasses")[0]].abs().sum() == 0
    assert build_vad_table(tokenizer, german, vad_lexicon_language="en")[token("hasses")[0]].abs().sum() > 0


def test_from_vision_text_takes_a_vad_table_of_the_lexicon_language():
    emotions = ["freude", "angst", "ruhe"]
    tokenizer = train_tokenizer(GERMAN_TEXTS, vocab_size=400)
    processor = SevlmProcessor.from_vision_text(
        tiny_vision_config(), tokenizer, emotions=emotions, prompt_text=" die emotion ist", connector_text=" weil"
    )
    german = build_vad_table(processor.tokenizer, FIXTURE_LEXICON_DE, vad_lexicon_language="de")
    model = SevlmForConditionalGeneration.from_vision_text(tiny_vision_config(), tiny_text_config(), processor, vad_table=german)
    hasses = processor.tokenizer(" hasses", add_special_tokens=False)["input_ids"][0]
    duester = processor.tokenizer(" düster", add_special_tokens=False)["input_ids"][0]
    assert model.vad_table[hasses].abs().sum() == 0 and model.vad_table[duester].abs().sum() > 0
    lemmatised = build_vad_table(processor.tokenizer, FIXTURE_LEXICON_DE, vad_lexicon_language="en")
    assert model.set_vad_table(lemmatised) > model.set_vad_table(german)
    torch.testing.assert_close(model.vad_table, german)
    # The model file takes a table, not a lexicon: lexicon reading is a tool's work (sevlm.vad).
    with pytest.raises(TypeError, match="vad_table="):
        SevlmForConditionalGeneration.from_vision_text(
            tiny_vision_config(), tiny_text_config(), processor, vad_lexicon=FIXTURE_LEXICON_DE
        )
    with pytest.raises(ValueError, match=r"shape"):
        model.set_vad_table(torch.zeros(3, 2))


def test_translated_nrc_vad_file_uses_the_word_of_its_language(tmp_path):
    path = tmp_path / "German-NRC-VAD-Lexicon.txt"
    path.write_text(
        "English Word\tValence\tArousal\tDominance\tGerman Word\nsadness\t0.052\t0.288\t0.164\tTraurigkeit\n"
        "calm\t0.790\t0.100\t0.500\truhig\n"
    )
    german = load_vad_lexicon(path, vad_lexicon_language="de")
    assert set(german) == {"traurigkeit", "ruhig"} and german["ruhig"] == pytest.approx((0.58, -0.8, 0.0))
    assert set(load_vad_lexicon(path)) == {"sadness", "calm"}


def test_any_taxonomy_trains_scores_and_generates():
    """Multi-word, multi-token and non-ASCII class names with another prompt and connector, end to end."""
    from pipeline_sevlm import predict_batch

    emotions = ["quiet longing", "Gemütlichkeit", "喜び"]
    explanations = ["the sky is calm and far away", "the warm room is cozy", "the colors are bright and happy"]
    texts = [f" the feeling is {e} since {x}" for e in emotions for x in explanations] * 10
    tokenizer = train_tokenizer(texts, vocab_size=500)
    processor = SevlmProcessor.from_vision_text(
        tiny_vision_config(), tokenizer, emotions=emotions, prompt_text=" the feeling is", connector_text=" since"
    )
    torch.manual_seed(0)
    model = SevlmForConditionalGeneration.from_vision_text(
        tiny_vision_config(),
        tiny_text_config(),
        processor,
        vad_table=build_vad_table(processor.tokenizer, FIXTURE_LEXICON),
        use_contrastive_loss=False,
    )
    assert model.config.prompt_text == " the feeling is" and model.config.connector_text == " since"
    images = random_images(3, seed=4)
    batch = processor(images=images, emotions=emotions, explanations=explanations)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    for _ in range(120):
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    pixel_values = processor(images=images)["pixel_values"]
    assert model.emotion_scores(pixel_values).argmax(-1).tolist() == [0, 1, 2]
    free = processor.post_process_generation(model.generate(pixel_values=pixel_values))
    assert free == [{"emotion": e, "explanation": x} for e, x in zip(emotions, explanations)]
    for source in ("scores", "generation"):
        results = predict_batch(model, processor, images, emotion_source=source)
        assert [r["emotion"] for r in results] == emotions
        assert [r["explanation"] for r in results] == explanations
        assert all(r["score"] == r["scores"][r["emotion"]] for r in results)


def test_emotion_scores_equal_the_full_sequence_likelihood():
    """emotion_scores applies the LM head only where a scored token is predicted; the result is the softmax of the
    likelihood of `{emotion} {connector}` computed from all logits."""
    from helpers import build_tiny, random_images

    model, processor = build_tiny(emotions=["awe", "something else", "très déçu"])
    model.eval()
    pixel_values = processor.preprocess_images(random_images(2))
    memory = model.get_image_features(pixel_values).last_hidden_state
    sequences = model.sequence_format
    rows = sequences.batch([sequences.prompt(index) for index in range(3)], padding_side="right")
    ids, mask = rows["input_ids"].repeat(2, 1), rows["attention_mask"].repeat(2, 1)
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask, encoder_hidden_states=memory, image_index=torch.arange(2).repeat_interleave(3)).logits
    log_probs = logits[:, :-1].log_softmax(-1).gather(-1, ids[:, 1:, None]).squeeze(-1)
    scored = mask[:, 1:].bool()
    scored[:, : len(sequences.prompt()) - 1] = False
    expected = (log_probs * scored).sum(-1).view(2, 3).softmax(-1)
    torch.testing.assert_close(model.emotion_scores(pixel_values), expected)
