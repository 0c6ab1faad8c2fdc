"""app.py in a real browser: the app runs in its own process on 127.0.0.1, headless Chromium (Debian's `chromium`,
driven by Playwright) uploads a painting and searches the collection; the page must show the pipeline's output,
and the browser must fetch nothing from anywhere but the app.

Skipped, saying why, only when Playwright or a Chromium executable cannot be found (`.ci/run` installs both).
"""

import os
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
    assert_offline(page, served["url"])
