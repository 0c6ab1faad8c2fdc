"""The web app's work: a Gradio page where a painting gets its emotion, the score of every emotion and why, and, with
an emotion index, the works of a collection that evoke the same, a search tab, recommendations from the works a
visitor likes, and any work shown large with more like it.

Every prediction goes through the model folder's own `predict_batch` (`sevlm.loading.predict_function`), the path
the pipeline and sevlm-predict use. An uploaded painting reaches the model as a file, decoded at a bounded size
(`processing_sevlm.load_image`): a hostile upload (a small PNG of 13000 x 13000 16-bit pixels) costs a bounded amount
of memory. Nothing is fetched from the internet: system fonts, no analytics, no version check. The page speaks the
visitor's language: its messages name its own controls, never a command-line flag, and the numbers behind "92%
alike" are in tooltips.

Cards of works carry two buttons: the picture (shows the work large, with more like it) and a like button. A click on
either reaches Python as the card list's `click` event with `{"action": "open" | "like", "id": ...}`; the visitor's
likes are per-session state, and every list can be downloaded as a CSV file (`sevlm.index.gallery.write_hits`).
"""

import atexit
import html
import json
import os
import shutil
import sys
import tempfile
import uuid
from pathlib import Path

# Gradio reads these at import: no usage analytics, no version check against api.gradio.app.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from sevlm import DEMO_CORPUS  # noqa: E402
from sevlm.images import IMAGE_EXTENSIONS, find_images  # noqa: E402
from sevlm.index.gallery import GALLERY_CSS, hit_cards_html, ranking_html  # noqa: E402
from sevlm.index.query import UnusableWords  # noqa: E402
from sevlm.io import display_path  # noqa: E402

PREDICTED = "(the predicted emotion)"
MIX, WORDS = "emotion mix", "words"
EXAMPLE_COUNT = 6
SYSTEM_FONTS = ["system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica Neue", "Arial", "sans-serif"]
MONO_FONTS = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"]


# --------------------------------------------------------------------------------------------- prediction
class Explainer:
    """The model, its processor and an optional index; turns the page's inputs into the page's outputs."""

    def __init__(self, model, processor, index=None, top_k=8):
        from sevlm.loading import predict_function

        self.model, self.processor, self.index, self.top_k = model, processor, index, top_k
        self.emotions = list(model.config.emotions)
        self.predict_batch = predict_function(model)  # a folder whose code cannot predict fails at start, not at the first painting
        if index is not None:
            index.check_model(model)
        self.exports = None  # the folder of the CSV files the page offers for download, made on first use

    def predict(self, image, asked=None, max_new_tokens=None, num_beams=1, do_sample=False, temperature=1.0, top_p=1.0, seed=42):
        """`predict_batch` result (with `image_embeds` when an index is loaded) of one painting (a file path, or a PIL
        image), read at a bounded size."""
        import torch
        from transformers import set_seed

        from processing_sevlm import load_image

        generation = {"max_new_tokens": int(max_new_tokens), "num_beams": int(num_beams)} if max_new_tokens else {"num_beams": int(num_beams)}
        if do_sample:
            generation.update(do_sample=True, temperature=float(temperature), top_p=float(top_p))
            set_seed(int(seed))
        emotions = None if asked in (None, "", PREDICTED) else [asked]
        pixel_values = self.processor.preprocess_images([load_image(image)])
        with torch.inference_mode():
            return self.predict_batch(
                self.model,
                self.processor,
                pixel_values=pixel_values,
                emotions=emotions,
                return_image_embeds=self.index is not None,
                generate_kwargs=generation,
            )[0]

    def card(self, image, asked, max_new_tokens, num_beams, do_sample, temperature, top_p, seed, visual_weight, liked=()):
        """Page outputs for a painting: emotion, its line, the scores, the explanation, the similar works."""
        return self.card_and_export(image, asked, max_new_tokens, num_beams, do_sample, temperature, top_p, seed, visual_weight, liked)[:5]

    def card_and_export(self, image, asked, max_new_tokens, num_beams, do_sample, temperature, top_p, seed, visual_weight, liked=()):
        """`card`'s outputs and the similar works as a CSV download."""
        if image is None:
            return "", "", None, "", "", no_download()
        try:
            result = self.predict(image, asked, max_new_tokens, num_beams, do_sample, temperature, top_p, seed)
        except ValueError as error:  # not an image, or one too large to decode safely
            return "", f"This file cannot be used as a painting: {html.escape(display_path(str(error)))}", None, "", "", no_download()
        how = "asked" if asked not in (None, "", PREDICTED) else "predicted"
        line = f"{how}; the model's probability of it: {result['score']:.0%}"
        similar, download = "", no_download()
        if self.index is not None:
            hits = self.index.search(prediction=result, top_k=self.top_k, visual_weight=float(visual_weight))
            similar = ranking_html(hits) + self.cards_html(hits, liked)
            download = self.download(hits, "similar-works")
        return result["emotion"], line, dict(result["scores"]), result["explanation"], similar, download

    def search(self, kind, query, emotion_filter, min_score, where="", liked=()):
        """Page output of the search tab: how the hits are ranked, the words that were not used, the hit cards; or
        a message saying what is wrong with the query in the page's own terms."""
        return self.search_and_export(kind, query, emotion_filter, min_score, where, liked)[0]

    def search_and_export(self, kind, query, emotion_filter, min_score, where="", liked=()):
        """`search`'s page output and the hits as a CSV download."""
        if self.index is None:
            return "<p>This app was started without a collection to search.</p>", no_download()
        query = (query or "").strip()
        if not query:
            return "<p>Type an emotion mix (awe=0.6, sadness=0.4) or some words (calm, melancholic).</p>", no_download()
        try:
            hits = self.index.search(
                emotions=query if kind == MIX else None,
                text=query if kind == WORDS else None,
                top_k=self.top_k,
                emotion=list(emotion_filter or []) or None,
                min_score=float(min_score) if min_score else None,
                where=conditions(where),
            )
        except UnusableWords as error:
            hint = f"Try other words, or choose \u201c{MIX}\u201d under \u201cSearch by\u201d and name emotions."
            return f'<p class="sevlm-error">{html.escape(str(error))} {html.escape(hint)}</p>', no_download()
        except (KeyError, ValueError) as error:
            return error_html(error), no_download()
        if not hits:
            return ranking_html(hits) + "<p>No work passes these filters: choose fewer emotions, a lower minimum score or other conditions.</p>", no_download()
        return ranking_html(hits) + self.cards_html(hits, liked), self.download(hits, "search-hits")

    def cards_html(self, hits, liked=(), ranked=True):
        return hit_cards_html(hits, [self.index.thumbnail(hit["id"]) for hit in hits], actions=True, liked=set(liked or ()), ranked=ranked)

    # ---------------------------------------------------------------------------------- likes and works
    def like(self, liked, item_id):
        """The likes after a click on a work's like button: added, or taken back when it was liked."""
        liked = list(liked or ())
        if item_id in liked:
            liked.remove(item_id)
        else:
            self.index.row_of(item_id)  # a work of this collection only
            liked.append(item_id)
        return liked

    def for_you(self, liked, visual_weight=0.0):
        """The "For you" tab: the works liked (each can be taken back), and the works recommended from them, each
        saying why, with their CSV download."""
        liked = list(liked or ())
        if not liked:
            empty = "<p>Press \u2661 Like on the works you like, in any list of this page: works that evoke the same appear here, each saying why.</p>"
            return "<p>No work liked yet.</p>", empty, no_download()
        works = self.index.hits([self.index.row_of(item_id) for item_id in liked], [0.0] * len(liked), {})
        liked_html = f"<p>You like {len(liked)} work(s):</p>" + self.cards_html(works, liked, ranked=False)
        try:
            hits = self.index.recommend(liked, top_k=self.top_k, visual_weight=float(visual_weight or 0.0))
        except (KeyError, ValueError) as error:
            return liked_html, error_html(error), no_download()
        if not hits:
            return liked_html, "<p>Every work of the collection is liked: nothing is left to recommend.</p>", no_download()
        return liked_html, ranking_html(hits) + self.cards_html(hits, liked), self.download(hits, "recommended")

    def work(self, item_id, liked=(), visual_weight=0.0):
        """The "Work" tab: the work large with its card, and more like it, with their CSV download."""
        if not item_id:
            return "<p>Click a work's picture in any list to see it here, large, with more like it.</p>", "", no_download()
        try:
            row = self.index.row_of(item_id)
            hits = self.index.search(id=item_id, top_k=self.top_k, visual_weight=float(visual_weight or 0.0))
        except (KeyError, ValueError) as error:
            return error_html(error), "", no_download()
        (work,) = self.index.hits([row], [0.0], {})
        picture = self.index.picture(item_id)
        card = hit_cards_html([work], [picture], actions=True, liked=set(liked or ()), ranked=False)
        more = "<h3>More like this</h3>" + ranking_html(hits) + self.cards_html(hits, liked)
        return f'<div class="sevlm-work">{card}</div>', more, self.download(hits, "more-like-this")

    def card_action(self, liked, action, item_id, liked_visual=0.0, work_visual=0.0):
        """A click on a card's button: a like (`action` "like") updates the likes and the "For you" tab; "open" shows
        the work in the "Work" tab. Outputs: likes, the "For you" lists and their download, the current work, its
        tab's lists and download, and the selected tab (`gr.skip()` for those that do not change)."""
        import gradio as gr

        skip = gr.skip
        if not item_id or self.index is None or action not in ("like", "open"):
            return [skip() for _ in range(9)]
        try:
            if action == "like":
                liked = self.like(liked, item_id)
                return [liked, *self.for_you(liked, liked_visual), skip(), skip(), skip(), skip(), skip()]
            return [skip(), skip(), skip(), skip(), item_id, *self.work(item_id, liked, work_visual), gr.Tabs(selected="work")]
        except KeyError as error:  # an id that is not in the collection (a page edited by hand)
            return [skip(), skip(), error_html(error), *[skip() for _ in range(6)]]

    # ---------------------------------------------------------------------------------- several paintings
    def batch(self, files, asked=None, progress=None):
        """Cards for several uploaded paintings, and their CSV download (the columns of sevlm-predict's CSV)."""
        files = [getattr(item, "name", item) for item in files or ()]
        if not files:
            return "<p>Choose several paintings (or drop them here) to see the emotion each evokes, and why.</p>", no_download()
        if len(files) > MAX_BATCH:
            note = f"<p class=\"sevlm-note\">The first {MAX_BATCH} of the {len(files)} paintings are explained.</p>"
            files = files[:MAX_BATCH]
        else:
            note = ""
        from processing_sevlm import load_image

        cards, rows = [], []
        for number, path in enumerate(progress.tqdm(files, desc="Explaining") if progress is not None else files, start=1):
            name = os.path.basename(path)
            try:
                result = self.predict(path, asked)
                picture = load_image(path, draft_size=(256, 256))
                picture.thumbnail((256, 256))
            except ValueError as error:
                cards.append(f'<p class="sevlm-error">{html.escape(name)}: {html.escape(display_path(str(error)))}</p>')
                continue
            hit = {"rank": number, "id": name, "file": path, "score": result["score"], "emotion": result["emotion"], "scores": result["scores"], "explanation": result["explanation"], "distances": {}}
            cards.append(hit_cards_html([hit], [picture], ranked=False))
            rows.append({"file": name, "emotion": result["emotion"], "score": result["score"], "explanation": result["explanation"], "scores": result["scores"]})
        page = note + '<div class="sevlm-batch">' + "".join(cards) + "</div>"
        return page, self.download_rows(rows, "paintings") if rows else no_download()

    # ------------------------------------------------------------------------------------------ downloads
    def export_folder(self, name):
        """A new folder for one download (so that its file keeps a plain name such as `search-hits.csv`)."""
        if self.exports is None:
            self.exports = Path(tempfile.mkdtemp(prefix="sevlm-app-exports-"))
            atexit.register(shutil.rmtree, self.exports, ignore_errors=True)
        folder = self.exports / uuid.uuid4().hex
        folder.mkdir()
        return folder / f"{name}.csv"

    def download(self, hits, name):
        """A list of works as a CSV file (the columns of sevlm-search's CSV) for the list's download button."""
        import gradio as gr

        from sevlm.index.gallery import write_hits
        from sevlm.io import replace_file

        path = self.export_folder(name)
        with replace_file(path, newline="") as stream:
            write_hits(hits, stream, "csv", self.index.emotions)
        return gr.DownloadButton(value=str(path), interactive=True)

    def download_rows(self, rows, name):
        """Predictions as a CSV file (the columns of sevlm-predict's CSV)."""
        import gradio as gr

        from sevlm.prediction import RowWriter

        path = self.export_folder(name)
        writer = RowWriter(path, self.emotions)
        for row in rows:
            writer.write(row)
        writer.close()
        return gr.DownloadButton(value=str(path), interactive=True)


MAX_BATCH = 50  # paintings explained from one batch upload
# Clicks on a card's buttons become the card list's `click` event with the action and the work's id; a like button
# changes at once, on every card of that work on the page, before the server answers.
CARD_ACTIONS_JS = """
element.addEventListener('click', (event) => {
  const button = event.target.closest('[data-action]');
  const card = button && button.closest('[data-id]');
  if (!card || !element.contains(button)) return;
  if (button.dataset.action === 'like') {
    const pressed = button.getAttribute('aria-pressed') !== 'true';
    document.querySelectorAll('.sevlm-hit').forEach((other) => {
      if (other.dataset.id !== card.dataset.id) return;
      other.querySelectorAll('.sevlm-like').forEach((like) => {
        like.setAttribute('aria-pressed', String(pressed));
        like.textContent = pressed ? LIKED : LIKE;
      });
    });
  }
  trigger('click', {action: button.dataset.action, id: card.dataset.id});
});
"""


def card_actions_js():
    from sevlm.index.gallery import LIKE_LABELS

    return CARD_ACTIONS_JS.replace("LIKED", json.dumps(LIKE_LABELS[True])).replace("LIKE", json.dumps(LIKE_LABELS[False]))


def no_download():
    """The download button of an empty list: nothing to download."""
    import gradio as gr

    return gr.DownloadButton(value=None, interactive=False)


def conditions(text):
    """The search tab's conditions on the works' metadata: one per line, or separated by `;` (a quoted value may hold
    one; `sevlm.index.query.split_conditions`, as on the command line)."""
    from sevlm.index.query import split_conditions

    return split_conditions(text) or None


def error_html(error):
    message = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
    return f'<p class="sevlm-error">{html.escape(display_path(message))}</p>'


APP_CSS = """
.sevlm-work .sevlm-grid { grid-template-columns: minmax(0, 680px); }
.sevlm-work .sevlm-hit img { width: 100%; height: auto; max-height: 560px; object-fit: contain; }
.sevlm-batch { display: grid; grid-template-columns: repeat(auto-fill, minmax(220px, 1fr)); gap: 14px; }
.sevlm-batch .sevlm-grid { display: block; }
.sevlm-error { color: #a4262c; }
"""


# ------------------------------------------------------------------------------------------------- layout
def build_app(explainer, examples=(), title="SEVLM"):
    """The Gradio Blocks of the app (launch it with `launch(app, host, port)`). Text that comes from files or folders
    (the title with the model's name, the index folder's name, the works' metadata) is escaped, never read as
    markup."""
    import gradio as gr

    emotions = explainer.emotions
    generation = explainer.model.generation_config
    index = explainer.index
    with gr.Blocks(title=title, analytics_enabled=False) as app:
        liked = gr.State([])  # the ids of the works this visitor likes
        current = gr.State(None)  # the work shown in the "Work" tab
        gr.HTML(
            f"<h2>{html.escape(title)}: the emotion a painting evokes, and why</h2><p>Upload a painting or pick an "
            "example. The model scores every emotion and explains the most likely one, or the one you choose.</p>"
        )
        card_lists = []  # the lists of works whose cards have buttons

        def card_list(elem_id, visible=True):
            block = gr.HTML(elem_id=elem_id, visible=visible, js_on_load=card_actions_js())
            card_lists.append(block)
            return block

        def export_button(elem_id, visible=True):
            return gr.DownloadButton("Export this list (CSV)", value=None, interactive=False, size="sm", elem_id=elem_id, visible=visible)

        with gr.Tabs() as tabs:
            with gr.Tab("Painting", id="painting"):
                with gr.Row():
                    with gr.Column(scale=1):
                        # A file path, not a decoded picture: the app reads it at a bounded size (Gradio would decode it whole).
                        image = gr.Image(type="filepath", image_mode=None, label="Painting", sources=["upload", "clipboard"], elem_id="painting", height=320)
                        asked = gr.Dropdown([PREDICTED, *emotions], value=PREDICTED, label="Explain", elem_id="asked-emotion")
                        with gr.Accordion("Generation settings", open=False):
                            max_new_tokens = gr.Slider(1, 64, value=int(generation.max_new_tokens or 25), step=1, label="Longest explanation (tokens)")
                            num_beams = gr.Slider(1, 8, value=int(generation.num_beams or 1), step=1, label="Beams (1: greedy)")
                            do_sample = gr.Checkbox(value=False, label="Sample instead of greedy / beam search")
                            temperature = gr.Slider(0.1, 2.0, value=1.0, step=0.05, label="Temperature (sampling)")
                            top_p = gr.Slider(0.05, 1.0, value=1.0, step=0.05, label="Top-p (sampling)")
                            seed = gr.Number(value=42, precision=0, label="Seed (sampling)")
                        visual_weight = gr.Slider(
                            0.0, 1.0, value=0.0, step=0.05, label="Similar works: how much their look counts (0: only the emotions they evoke)",
                            visible=index is not None,
                        )  # fmt: skip
                        run = gr.Button("Explain", variant="primary", elem_id="run")
                        if examples:
                            gr.Examples(examples=[[str(path)] for path in examples], inputs=[image], label="Examples")
                    with gr.Column(scale=1):
                        emotion = gr.Textbox(label="Emotion", interactive=False, elem_id="emotion")
                        emotion_line = gr.Markdown(elem_id="emotion-line")
                        scores = gr.Label(num_top_classes=len(emotions), label="Scores of every emotion", elem_id="scores", show_heading=False)
                        explanation = gr.Textbox(label="Because...", interactive=False, lines=2, elem_id="explanation")
                if index is not None:
                    gr.HTML(
                        f"<h3>Works that evoke the same</h3><p>The {explainer.top_k} works of the collection closest to this "
                        "painting in the mix of emotions they evoke (the slider adds how much they look alike). Click a "
                        "picture to see it large; \u2661 Like the works you like.</p>"
                    )
                similar = card_list("similar", visible=index is not None)
                export_similar = export_button("export-similar", visible=index is not None)
            inputs = [image, asked, max_new_tokens, num_beams, do_sample, temperature, top_p, seed, visual_weight, liked]
            outputs = [emotion, emotion_line, scores, explanation, similar, export_similar]
            for event in (image.change, asked.change, run.click):
                event(explainer.card_and_export, inputs=inputs, outputs=outputs)

            with gr.Tab("Several paintings", id="batch"):
                gr.HTML("<p>Upload several paintings at once: each gets its emotion, the score of every emotion and why.</p>")
                files = gr.File(file_count="multiple", file_types=["image"], type="filepath", label="Paintings", elem_id="batch-files")
                batch_run = gr.Button("Explain them", variant="primary", elem_id="batch-run")
                batch_cards = gr.HTML(elem_id="batch-cards")
                export_batch = export_button("export-batch")

                def explain_batch(uploaded, progress=gr.Progress()):
                    return explainer.batch(uploaded, progress=progress)

                for event in (files.upload, batch_run.click):
                    event(explain_batch, inputs=[files], outputs=[batch_cards, export_batch])

            if index is not None:
                with gr.Tab("Search the collection", id="search"):
                    gr.HTML(
                        f'<p>Search the {len(index)} works of <code id="index-name">{html.escape(display_path(index.folder))}</code> '
                        "by an emotion mix (<code>awe=0.6, sadness=0.4</code>) or by words (<code>calm, melancholic</code>: how "
                        "the words feel, and any emotions they name).</p>"
                    )
                    with gr.Row():
                        kind = gr.Radio([MIX, WORDS], value=MIX, label="Search by", elem_id="search-kind")
                        query = gr.Textbox(label="Query", placeholder="awe=0.6, sadness=0.4", elem_id="search-query")
                    with gr.Row():
                        emotion_filter = gr.Dropdown(emotions, multiselect=True, label="Only works whose predicted emotion is", elem_id="search-emotion")
                        min_score = gr.Slider(0.0, 1.0, value=0.0, step=0.05, label="Minimum score of the predicted emotion", elem_id="search-min-score")
                    columns = index.metadata_columns
                    example = f"{columns[0]}=..., or {columns[-1]}>=..." if columns else ""
                    where = gr.Textbox(
                        label=f"Only works where ({', '.join(columns)}; e.g. {example}; one condition per line or separated by ;)",
                        lines=1, elem_id="search-where", visible=bool(columns),
                    )  # fmt: skip
                    search = gr.Button("Search", variant="primary", elem_id="search")
                    hits = card_list("search-hits")
                    export_search = export_button("export-search")
                    for event in (search.click, query.submit, where.submit):
                        event(explainer.search_and_export, inputs=[kind, query, emotion_filter, min_score, where, liked], outputs=[hits, export_search])

                with gr.Tab("For you", id="for-you"):
                    gr.HTML("<p>Works that evoke what the works you like evoke: like works in any list, and this list follows.</p>")
                    liked_cards = card_list("liked")
                    liked_visual = gr.Slider(0.0, 1.0, value=0.0, step=0.05, label="How much their look counts (0: only the emotions they evoke)", elem_id="for-you-visual")
                    gr.HTML("<h3>Recommended for you</h3>")
                    recommended = card_list("recommended")
                    export_recommended = export_button("export-recommended")
                    liked_visual.change(explainer.for_you, inputs=[liked, liked_visual], outputs=[liked_cards, recommended, export_recommended])

                with gr.Tab("Work", id="work"):
                    work_card = card_list("work")
                    work_visual = gr.Slider(0.0, 1.0, value=0.0, step=0.05, label="More like this: how much their look counts", elem_id="work-visual")
                    more = card_list("more-like-this")
                    export_more = export_button("export-more")
                    work_visual.change(explainer.work, inputs=[current, liked, work_visual], outputs=[work_card, more, export_more])

                action_outputs = [liked, liked_cards, recommended, export_recommended, current, work_card, more, export_more, tabs]

                def on_card(liked_ids, liked_weight, work_weight, event: gr.EventData):
                    data = event._data if isinstance(getattr(event, "_data", None), dict) else {}
                    return explainer.card_action(liked_ids, data.get("action"), data.get("id"), liked_weight, work_weight)

                for block in card_lists:
                    block.click(on_card, inputs=[liked, liked_visual, work_visual], outputs=action_outputs)
                app.load(explainer.work, inputs=[current, liked, work_visual], outputs=[work_card, more, export_more])
                app.load(explainer.for_you, inputs=[liked, liked_visual], outputs=[liked_cards, recommended, export_recommended])
    return app


def launch(app, host="127.0.0.1", port=7860, **kwargs):
    """Serve the app offline: system fonts (no font download), no SSR node server, errors shown on the page."""
    import gradio as gr

    theme = gr.themes.Default(font=SYSTEM_FONTS, font_mono=MONO_FONTS)
    return app.launch(server_name=host, server_port=port, theme=theme, css=GALLERY_CSS + APP_CSS, ssr_mode=False, show_error=True, **kwargs)


# ------------------------------------------------------------------------------------------------ examples
def example_paintings(inputs=None, index=None, dataset_path=DEMO_CORPUS, count=EXAMPLE_COUNT):
    """Example files: `inputs` (files, folders, globs); else works of the `index` whose files exist; without an index,
    the first paintings of the demo test split saved as PNG files in a temporary folder; else none."""
    if inputs:
        paths, problems = find_images(inputs, IMAGE_EXTENSIONS)
        for item, reason in problems:
            print(f"--examples {display_path(item)}: {reason}", file=sys.stderr)
        return paths
    if index is not None:
        return [Path(name) for name in index.example_files(count)]
    if not os.path.isdir(dataset_path):
        return []
    from sevlm.data.schema import load_corpus

    split = load_corpus(dataset_path, ["test"])["test"]
    folder = Path(tempfile.mkdtemp(prefix="sevlm-app-examples-"))
    paths = []
    for row in split.select(range(min(count, len(split)))):
        path = folder / (str(row["painting_id"]).replace("/", "_") + ".png")
        row["image"].convert("RGB").save(path)
        paths.append(path)
    return paths


def make_app(model_name_or_path, index=None, examples=None, device=None, top_k=8, title=None):
    """Load the model (and the index) and build the page (headed `title`, default SEVLM and the model's name), not
    yet served: loading errors are raised here."""
    from sevlm.index.store import EmotionIndex
    from sevlm.loading import load_model_and_processor, pick_device

    model, processor = load_model_and_processor(model_name_or_path, pick_device(device))
    collection = EmotionIndex.load(index) if index else None
    explainer = Explainer(model, processor, collection, top_k=top_k)
    title = title or f"SEVLM ({Path(str(model_name_or_path)).name})"
    return build_app(explainer, example_paintings(examples, collection), title=title)


def serve(model_name_or_path, index=None, examples=None, host="127.0.0.1", port=7860, device=None, top_k=8):
    """Load the model (and the index), build the page and serve it. Loading errors are raised before anything
    listens."""
    return launch(make_app(model_name_or_path, index, examples, device, top_k), host, port)
