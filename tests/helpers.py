"""Shared test helpers: tiny SEVLM models built from configs, a locally trained tokenizer, fixture lexicons, random
images. Nothing here downloads anything: the Hub is unreachable in tests and CI."""

import importlib.metadata
import pathlib

import numpy as np
import torch
from PIL import Image
from transformers import CLIPVisionConfig, GPT2Config

from configuration_sevlm import ARTEMIS_EMOTIONS
from modeling_sevlm import SevlmForConditionalGeneration
from processing_sevlm import SevlmProcessor
from sevlm.tokenizer import train_tokenizer
from sevlm.vad import build_vad_table

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
FIXTURES = pathlib.Path(__file__).resolve().parent / "fixtures"
FIXTURE_LEXICON = FIXTURES / "vad_fixture.txt"
NRC_VAD = REPO_ROOT.parent / "shared" / "data" / "nrc-vad" / "NRC-VAD-Lexicon.txt"


def console_scripts():
    """{command: "module:function"} of every console script the package installs (pyproject.toml's, as the installed
    package's metadata holds them)."""
    entry_points = importlib.metadata.distribution("sevlm").entry_points
    return {entry.name: entry.value for entry in entry_points if entry.group == "console_scripts"}

EXPLANATIONS = [
    "the colors are dark and gloomy",
    "the mountain is huge and majestic",
    "it is strange and I do not know why",
    "the sky is calm and peaceful",
    "the faces are angry and full of rage",
    "the woman looks lonely and sad",
    "the storm is frightening",
    "the bright colors make me happy",
    "the painting is ugly and disgusting",
    "the dancers run with joy and excitement",
]


def corpus_texts(emotions=ARTEMIS_EMOTIONS):
    """Texts a tiny tokenizer is trained on: every emotion name, the prompt, the connector, explanations."""
    texts = []
    for emotion in emotions:
        for explanation in EXPLANATIONS:
            texts.append(f" the emotion is {emotion} because {explanation}")
    return texts


def tiny_vision_config(**overrides):
    values = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=32, patch_size=8)
    values.update(overrides)
    return CLIPVisionConfig(**values)


def tiny_text_config(**overrides):
    values = dict(n_embd=32, n_layer=2, n_head=2, n_positions=64, vocab_size=100, bos_token_id=0, eos_token_id=0)
    values.update(overrides)
    return GPT2Config(**values)


def build_tiny(emotions=ARTEMIS_EMOTIONS, tokenizer=None, vad_lexicon=FIXTURE_LEXICON, seed=0, **config_kwargs):
    """A tiny SEVLM (random weights) and its processor; `vad_lexicon=None` leaves the VAD table empty."""
    tokenizer = tokenizer or train_tokenizer(corpus_texts(emotions), vocab_size=1000)
    processor = SevlmProcessor.from_vision_text(tiny_vision_config(), tokenizer, emotions=list(emotions))
    torch.manual_seed(seed)
    vad_table = None if vad_lexicon is None else build_vad_table(processor.tokenizer, vad_lexicon)
    model = SevlmForConditionalGeneration.from_vision_text(
        tiny_vision_config(), tiny_text_config(), processor, vad_table=vad_table, **config_kwargs
    )
    return model, processor


def random_images(count, seed=0, size=(40, 48)):
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)) for _ in range(count)]


def overfit(model, processor, steps=150, seed=0):
    """Teach a tiny model a few (image, emotion, explanation) triples so that generation writes real text."""
    torch.manual_seed(seed)
    images = random_images(4, seed=seed)
    emotions = ["sadness", "awe", "something else", "anger"]
    explanations = [EXPLANATIONS[5], EXPLANATIONS[1], EXPLANATIONS[2], EXPLANATIONS[4]]
    batch = processor(images=images, emotions=emotions, explanations=explanations)
    use_contrastive = model.config.use_contrastive_loss
    model.config.use_contrastive_loss = False
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    model.train()
    for _ in range(steps):
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.config.use_contrastive_loss = use_contrastive
    return model.eval(), images
