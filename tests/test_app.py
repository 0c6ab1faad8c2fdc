"""app.py in a real browser: the app runs in its own process on 127.0.0.1, headless Chromium (Debian's `chromium`,
driven by Playwright) uploads a painting and searches the collection; the page must show the pipeline's output,
and the browser must fetch nothing from anywhere but the app.

Skipped, saying why, only when Playwright or a Chromium executable cannot be found (`.ci/run` installs both).
"""

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from helpers import REPO_ROOT, random_images

from pipeline_sevlm import predict_batch
from sevlm.hub import add_pipeline_to_folder
from sevlm.index.store import EmotionIndex

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
TIMEOUT_MS = 120_000


def find_chromium():
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def browser_executable():
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("Playwright is not installed (pip install -e '.[test]'); the browser tests need it")
    executable = find_chromium()
    if executable is None:
        pytest.skip(f"No Chromium executable found ({', '.join(CHROMIUM_NAMES)}); install Debian's chromium (apt-get install chromium)")
    return executable


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def served(browser_executable, trained_tiny, tmp_path_factory):
    """The app on a free port with the tiny trained model and an index of 8 paintings (its 4 learned ones first)."""
    model, processor, images = trained_tiny
    root = tmp_path_factory.mktemp("app")
    folder = root / "model"
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    add_pipeline_to_folder(folder)
    paintings = root / "paintings"
    paintings.mkdir()
    for number, image in enumerate(images + random_images(4, seed=21)):
        image.save(paintings / f"painting-{number}.png")
    index = EmotionIndex.build([paintings], root / "index", model=model, processor=processor, progress=False)

    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("GRADIO_") and key != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", HF_HOME=str(root / "hf_home"), OMP_NUM_THREADS="1", GRADIO_TEMP_DIR=str(root / "gradio"))
    log = open(root / "app.log", "w+", encoding="utf-8")
    command = [
        sys.executable, str(REPO_ROOT / "app.py"), "--model", str(folder), "--index", str(root / "index"),
        "--examples", str(paintings / "painting-1.png"), "--host", "127.0.0.1", "--port", str(port), "--device", "cpu",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                urllib.request.urlopen(url, timeout=2).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    pytest.fail(f"app.py did not start (exit {process.poll()}):\n{log.read()[-4000:]}")
                time.sleep(0.5)
        yield {"url": url, "model": folder, "index": index, "paintings": paintings, "executable": browser_executable}
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture()
def page(served, tmp_path):
    """A fresh headless Chromium page (its own profile) that records every request it makes."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=served["executable"],
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 1000},
        )
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        page.requests = []
        page.on("request", lambda request: page.requests.append(request.url))
        try:
            yield page
        finally:
            context.close()


def textbox(page, elem_id):
    return page.locator(f"#{elem_id} textarea, #{elem_id} input").first.input_value()


def assert_offline(page, url):
    foreign = [address for address in page.requests if not address.startswith((url + "/", "data:", "blob:")) and address != url]
    assert page.requests and not foreign, f"the page fetched from elsewhere: {foreign}"


def test_upload_shows_the_pipelines_card(served, page, tmp_path):
    from transformers import pipeline

    painting = served["paintings"] / "painting-0.png"
    pipe = pipeline("art-emotion", model=str(served["model"]), trust_remote_code=True, device="cpu")
    expected = pipe(str(painting))
    asked = next(name for name in pipe.emotions if name != expected["emotion"])
    expected_asked = pipe(str(painting), emotion=asked)

    page.goto(served["url"])
    page.locator("#painting input[type=file]").set_input_files(str(painting))
    page.wait_for_function("() => document.querySelector('#explanation textarea')?.value.length > 0")
    assert textbox(page, "emotion") == expected["emotion"]
    assert textbox(page, "explanation") == expected["explanation"]
    scores = page.locator("#scores").inner_text()
    assert all(name in scores for name in pipe.emotions)
    assert f"{expected['score']:.0%}" in page.locator("#emotion-line").inner_text()
    # works that evoke the same: the index's nearest neighbours of this painting, itself first
    page.wait_for_selector("#similar [data-id]")
    shown = page.locator("#similar [data-id]").evaluate_all("cards => cards.map(card => card.dataset.id)")
    result = predict_batch(pipe.model, pipe.processor, [str(painting)], return_image_embeds=True)[0]
    assert shown == [hit["id"] for hit in served["index"].search(prediction=result, top_k=8)]
    assert shown[0] == str(painting)
    page.screenshot(path=str(tmp_path / "app.png"), full_page=True)
    assert (tmp_path / "app.png").stat().st_size > 10_000

    # explain another emotion
    page.locator("#asked-emotion input").click()
    page.get_by_role("option", name=asked, exact=True).click()
    page.wait_for_function(f"() => document.querySelector('#emotion textarea')?.value === {asked!r}")
    page.wait_for_function(f"() => document.querySelector('#explanation textarea')?.value === {expected_asked['explanation']!r}")
    assert "asked" in page.locator("#emotion-line").inner_text()
    assert_offline(page, served["url"])


def test_search_the_collection(served, page):
    index = served["index"]
    page.goto(served["url"])
    page.get_by_role("tab", name="Search the collection").click()
    page.locator("#search-query textarea, #search-query input").first.fill("awe=0.6, sadness=0.4")
    page.locator("#search").click()
    page.wait_for_selector("#search-hits [data-id]")
    shown = page.locator("#search-hits [data-id]").evaluate_all("cards => cards.map(card => card.dataset.id)")
    assert shown == [hit["id"] for hit in index.search(emotions="awe=0.6,sadness=0.4", top_k=8)]
    # a query the index cannot answer gives a message on the page, not a broken page
    page.locator("#search-query textarea, #search-query input").first.fill("joy=1")
    page.locator("#search").click()
    page.wait_for_selector("#search-hits .sevlm-error")
    assert "Unknown emotion 'joy'" in page.locator("#search-hits").inner_text()
    # words: those that took no part are named, with the nearest words the model knows
    page.get_by_text("words", exact=True).click()
    page.locator("#search-query textarea, #search-query input").first.fill("calm, glomy")
    page.locator("#search").click()
    page.wait_for_selector("#search-hits .sevlm-note")
    shown = page.locator("#search-hits [data-id]").evaluate_all("cards => cards.map(card => card.dataset.id)")
    assert shown == [hit["id"] for hit in index.search(text="calm, glomy", top_k=8)]
    assert "'glomy' (nearest known: gloomy)" in page.locator("#search-hits .sevlm-note").inner_text()
    assert_offline(page, served["url"])


# ------------------------------------------------------------------------------ the page's words, no browser
@pytest.fixture(scope="module")
def explainer(trained_tiny, tmp_path_factory):
    """The app's Explainer over an index of 4 paintings in a folder whose name is markup."""
    from sevlm.app import Explainer

    model, processor, images = trained_tiny
    root = tmp_path_factory.mktemp("words")
    paintings = root / "paintings"
    paintings.mkdir()
    for number, image in enumerate(images):
        image.save(paintings / f"painting-{number}.png")
    folder = root / "<img src=x onerror=alert(1)>*index*"
    index = EmotionIndex.build([paintings], folder, model=model, processor=processor, progress=False)
    return Explainer(model, processor, index, top_k=3)


def test_search_tab_messages_speak_of_the_page_not_of_flags(explainer):
    page = explainer.search("words", "zzzz qqqq", [], 0)
    assert "sevlm-error" in page and "zzzz" in page and "--" not in page
    assert "emotion mix" in page and "Search by" in page  # the page's own controls
    page = explainer.search("words", "calm, glomy", [], 0)
    assert "data-id" in page and "Not used" in page and "&#x27;glomy&#x27; (nearest known: gloomy)" in page
    seen = re.sub(r"<[^>]*>", " ", page)  # what a visitor reads: no tags, no tooltips
    assert "Ranked by" in seen and "Euclidean" not in seen and "VAD" not in seen and "Euclidean distance" in page  # in the tooltip
    page = explainer.search("emotion mix", "awe=1e308, sadness=1e308", [], 0)
    assert page.count("data-id=") == 3


def test_the_collection_name_is_text_not_markup(explainer):
    import gradio as gr

    from sevlm.app import build_app

    app = build_app(explainer, title="SEVLM (<b>model</b>)")
    texts = [str(block.value) for block in app.blocks.values() if isinstance(block, (gr.HTML, gr.Markdown)) and block.value]
    assert any("&lt;img src=x onerror=alert(1)&gt;*index*" in text for text in texts), texts
    assert not any("<img src=x" in text or "<b>model</b>" in text for text in texts)
    assert any("SEVLM (&lt;b&gt;model&lt;/b&gt;)" in text for text in texts)
    shown = " ".join(texts)
    assert "Hellinger" not in shown and "VAD profile" not in shown
    (painting,) = [block for block in app.blocks.values() if isinstance(block, gr.Image)]
    assert painting.type == "filepath"  # Gradio does not decode an upload whole: the app reads it at a bounded size


def test_examples_come_from_the_collection(explainer, tmp_path):
    from sevlm.app import example_paintings

    files = [str(path) for path in example_paintings(None, explainer.index, dataset_path=str(tmp_path / "no-demo"))]
    assert files == sorted(explainer.index.dataset["file"])
    assert example_paintings(None, None, dataset_path=str(tmp_path / "no-demo")) == []


def test_a_huge_upload_is_read_at_a_bounded_size(explainer, tmp_path, monkeypatch):
    """A 16-bit PNG of 6000 x 6000 pixels reaches the model through the bounded loader (the app took 0.6 -> 4.2 GB
    per request with a 13000 x 13000 one)."""
    import numpy as np
    from PIL import Image

    import processing_sevlm

    path = tmp_path / "huge.png"
    Image.fromarray(np.zeros((6000, 6000), dtype=np.uint16)).save(path)
    seen = []
    real = explainer.processor.preprocess_images
    monkeypatch.setattr(explainer.processor, "preprocess_images", lambda images, **kw: seen.extend(image.size for image in images) or real(images, **kw))
    emotion, _, scores, _, similar = explainer.card(str(path), None, None, 1, False, 1.0, 1.0, 42, 0.0)
    assert emotion in explainer.emotions and seen == [(processing_sevlm.LARGEST_SIDE, processing_sevlm.LARGEST_SIDE)]


def test_a_damaged_index_stops_the_app_with_a_message(trained_tiny, tmp_path, capsys):
    import runpy

    model, processor, _ = trained_tiny
    model.save_pretrained(tmp_path / "model")
    processor.save_pretrained(tmp_path / "model")
    add_pipeline_to_folder(tmp_path / "model")
    (tmp_path / "index").mkdir()
    (tmp_path / "index" / "index_config.json").write_text('{"format": "sevlm-emotion-index", "version": 2, "parts": [')
    app = runpy.run_path(str(REPO_ROOT / "app.py"))
    code = app["main"](["--model_name_or_path", str(tmp_path / "model"), "--index", str(tmp_path / "index"), "--device", "cpu"])
    stderr = capsys.readouterr().err
    assert code == 1 and f"{tmp_path / 'index' / 'index_config.json'} is damaged" in stderr and "Traceback" not in stderr
