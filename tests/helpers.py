"""Shared test helpers: tiny SEVLM models built from configs, a locally trained tokenizer, fixture lexicons, random
images. Nothing here downloads anything: the Hub is unreachable in tests and CI."""

import contextlib
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


# ------------------------------------------------------------------------------------ a collection with metadata
# title, artist, date, room of painting-N.png; "c. 1890" is a date that is not a number, "claude monet" the same
# artist as "Claude Monet" written otherwise.
WORKS = [
    ("Water Lilies", "Claude Monet", "1906", "Room 3"),
    ("Haystacks", "Claude Monet", "1891", "Room 3"),
    ("The Storm", "Jane Doe", "c. 1890", "Room 1"),
    ("Night Sea", "Jane Doe", "1921", "Room 1"),
    ("Red Square", "A. Painter", "1915", "Room 2"),
    ("Still Life", "A. Painter", "1899", "Room 2"),
    ("Poplars", "claude monet", "1910", "Room 2"),
]


def write_collection(root, images):
    """`root/paintings/painting-N.png` for each image and `root/works.csv` describing the first `len(WORKS)` of them
    (some by their path relative to the CSV, some by their file name), with a row for a file that is not there
    (`ghost.png`, line 9); a last painting, if any, has no row. Returns (paintings folder, CSV path)."""
    import csv

    paintings = pathlib.Path(root) / "paintings"
    paintings.mkdir(parents=True)
    for number, image in enumerate(images):
        image.save(paintings / f"painting-{number}.png")
    path = pathlib.Path(root) / "works.csv"
    with open(path, "w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["file", "title", "artist", "date", "room"])
        for number, work in enumerate(WORKS[: len(images)]):
            name = f"paintings/painting-{number}.png" if number % 2 == 0 else f"painting-{number}.png"
            writer.writerow([name, *work])
        writer.writerow(["ghost.png", "Lost", "Nobody", "1800", "Room 9"])
    return paintings, path


# ------------------------------------------------------------------------------------------- the browser
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
BROWSER_TIMEOUT_MS = 120_000


def chromium_or_skip():
    """The Chromium executable Playwright drives (Debian's `chromium`), or a skip saying what is missing."""
    import shutil

    import pytest

    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("Playwright is not installed (pip install -e '.[test]'); the browser tests need it")
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    pytest.skip(f"No Chromium executable found ({', '.join(CHROMIUM_NAMES)}); install Debian's chromium (apt-get install chromium)")


@contextlib.contextmanager
def browser_page(executable, profile, viewport=(1280, 1000), **context_options):
    """A fresh headless Chromium page (its own profile folder) that records the address of every request it makes
    in `page.requests`."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=executable, headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": viewport[0], "height": viewport[1]}, **context_options,
        )  # fmt: skip
        context.set_default_timeout(BROWSER_TIMEOUT_MS)
        page = context.new_page()
        page.requests = []
        page.on("request", lambda request: page.requests.append(request.url))
        try:
            yield page
        finally:
            context.close()


def free_port():
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def serving(command, url, cwd, env, log_path, deadline_s=240):
    """Run a web app (`command`) until the block ends; yields once `url` answers. A process that exits or does not
    answer in time fails the test with the end of its log."""
    import subprocess
    import time
    import urllib.request

    import pytest

    log = open(log_path, "w+", encoding="utf-8")
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + deadline_s
        while True:
            try:
                urllib.request.urlopen(url, timeout=2).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    pytest.fail(f"{command[1]} did not start (exit {process.poll()}):\n{log.read()[-4000:]}")
                time.sleep(0.5)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
