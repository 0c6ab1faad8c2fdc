"""app.py in a real browser: the app runs in its own process on 127.0.0.1, headless Chromium (Debian's `chromium`,
driven by Playwright) uploads a painting and searches the collection; the page must show the pipeline's output,
and the browser must fetch nothing from anywhere but the app.

Skipped, saying why, only when Playwright or a Chromium executable cannot be found (`.ci/run` installs both).
"""

import csv
import os
import re
import sys

import pytest
from helpers import REPO_ROOT, browser_page, chromium_or_skip, free_port, random_images, serving, write_collection

from pipeline_sevlm import predict_batch
from sevlm.hub import add_pipeline_to_folder
from sevlm.index.build import attach_metadata
from sevlm.index.store import EmotionIndex


@pytest.fixture(scope="module")
def browser_executable():
    return chromium_or_skip()


@pytest.fixture(scope="module")
def served(browser_executable, trained_tiny, tmp_path_factory):
    """The app on a free port with the tiny trained model and an index of 8 paintings (its 4 learned ones first),
    7 of them with their metadata (title, artist, date, room)."""
    model, processor, images = trained_tiny
    root = tmp_path_factory.mktemp("app")
    folder = root / "model"
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    add_pipeline_to_folder(folder)
    paintings, works = write_collection(root, images + random_images(4, seed=21))
    EmotionIndex.build([paintings], root / "index", model=model, processor=processor, progress=False)
    index = attach_metadata(root / "index", works)

    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("GRADIO_") and key != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", HF_HOME=str(root / "hf_home"), OMP_NUM_THREADS="1", GRADIO_TEMP_DIR=str(root / "gradio"))
    command = [
        sys.executable, str(REPO_ROOT / "app.py"), "--model", str(folder), "--index", str(root / "index"),
        "--examples", str(paintings / "painting-1.png"), "--host", "127.0.0.1", "--port", str(port), "--device", "cpu",
    ]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    with serving(command, url, root, env, root / "app.log", deadline_s=180):
        yield {"url": url, "model": folder, "index": index, "paintings": paintings, "executable": browser_executable}


@pytest.fixture()
def page(served, tmp_path):
    """A fresh headless Chromium page (its own profile) that records every request it makes."""
    with browser_page(served["executable"], tmp_path / "profile") as page:
        yield page


def textbox(page, elem_id):
    return page.locator(f"#{elem_id} textarea, #{elem_id} input").first.input_value()


def assert_offline(page, url):
    foreign = [address for address in page.requests if not address.startswith((url + "/", "data:", "blob:")) and address != url]
    assert page.requests and not foreign, f"the page fetched from elsewhere: {foreign}"


@pytest.mark.slow
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


@pytest.mark.slow
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


def card_ids(page, selector):
    return page.locator(f"{selector} [data-id]").evaluate_all("cards => cards.map(card => card.dataset.id)")


def downloaded_rows(page, button):
    """The rows of the CSV file a download button gives."""
    with page.expect_download() as download:
        page.locator(f"#{button}").click()
    with open(download.value.path(), newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


@pytest.mark.slow
def test_likes_recommendations_a_work_large_and_exports(served, page):
    index = served["index"]
    page.goto(served["url"])
    page.get_by_role("tab", name="Search the collection").click()
    page.locator("#search-query textarea, #search-query input").first.fill("awe=0.6, sadness=0.4")
    page.locator("#search-where textarea, #search-where input").first.fill("room=Room 3; date>=1800")
    page.locator("#search").click()
    page.wait_for_selector("#search-hits [data-id]")
    hits = index.search(emotions="awe=0.6,sadness=0.4", where=["room=Room 3", "date>=1800"], top_k=8)
    assert card_ids(page, "#search-hits") == [hit["id"] for hit in hits] and len(hits) == 2
    assert "Claude Monet" in page.locator("#search-hits").inner_text()  # the works' metadata on their cards
    rows = downloaded_rows(page, "export-search")
    assert [row["id"] for row in rows] == [hit["id"] for hit in hits] and [row["artist"] for row in rows] == ["Claude Monet"] * 2

    # a like: the "For you" tab lists the works recommended from it, each saying why, never the liked work
    first = hits[0]["id"]
    page.locator(f'#search-hits [data-id="{first}"] [data-action="like"]').click()
    page.get_by_role("tab", name="For you").click()
    expected = index.recommend([first], top_k=8)
    page.wait_for_function(f"() => document.querySelectorAll('#recommended [data-id]').length === {len(expected)}")
    assert card_ids(page, "#liked") == [first]
    assert card_ids(page, "#recommended") == [hit["id"] for hit in expected] and first not in card_ids(page, "#recommended")
    assert page.locator("#recommended .sevlm-because").all_inner_texts() == [hit["because"] for hit in expected]
    # a second like, from the recommendations: the list follows
    second = expected[0]["id"]
    page.locator(f'#recommended [data-id="{second}"] [data-action="like"]').click()
    page.wait_for_function("() => document.querySelectorAll('#liked [data-id]').length === 2")
    expected = index.recommend([first, second], top_k=8)
    page.wait_for_function("(liked) => ![...document.querySelectorAll('#recommended [data-id]')].some(card => card.dataset.id === liked)", arg=second)
    assert card_ids(page, "#recommended") == [hit["id"] for hit in expected]
    rows = downloaded_rows(page, "export-recommended")
    assert [row["id"] for row in rows] == [hit["id"] for hit in expected] and [row["because"] for row in rows] == [hit["because"] for hit in expected]

    # a click on a picture: the work large, with its card, and more like it
    chosen = expected[1]["id"]
    page.locator(f'#recommended [data-id="{chosen}"] [data-action="open"]').click()
    page.wait_for_selector(f'#work [data-id="{chosen}"]')
    assert page.get_by_role("tab", name="Work").get_attribute("aria-selected") == "true"
    shown = page.locator("#work img").first.evaluate("image => [image.naturalWidth, image.getBoundingClientRect().width]")
    assert shown[0] == index.picture(chosen).width and shown[1] > 300  # shown large
    more = index.search(id=chosen, top_k=8)
    page.wait_for_function(f"() => document.querySelectorAll('#more-like-this [data-id]').length === {len(more)}")
    assert card_ids(page, "#more-like-this") == [hit["id"] for hit in more]
    assert [row["id"] for row in downloaded_rows(page, "export-more")] == [hit["id"] for hit in more]
    assert_offline(page, served["url"])


@pytest.mark.slow
def test_several_paintings_at_once(served, page):
    from transformers import pipeline

    files = [served["paintings"] / f"painting-{number}.png" for number in (0, 2, 5)]
    pipe = pipeline("art-emotion", model=str(served["model"]), trust_remote_code=True, device="cpu")
    expected = [pipe(str(path)) for path in files]
    page.goto(served["url"])
    page.get_by_role("tab", name="Several paintings").click()
    page.locator("#batch-files input[type=file]").set_input_files([str(path) for path in files])
    page.wait_for_function("() => document.querySelectorAll('#batch-cards .sevlm-hit').length === 3")
    assert card_ids(page, "#batch-cards") == [path.name for path in files]
    assert page.locator("#batch-cards .sevlm-emotion").all_inner_texts() == [f"{result['emotion']} {result['score']:.0%}" for result in expected]
    rows = downloaded_rows(page, "export-batch")
    assert [(row["file"], row["emotion"], row["explanation"]) for row in rows] == [(path.name, result["emotion"], result["explanation"]) for path, result in zip(files, expected)]
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
