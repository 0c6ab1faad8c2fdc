"""The web app's work: a Gradio page where a painting gets its emotion, the score of every emotion and why, and, with
an emotion index, the works of a collection that evoke the same and a search tab.

Every prediction goes through the model folder's own `predict_batch` (`sevlm.loading.predict_function`), the path
the pipeline and sevlm-predict use. An uploaded painting reaches the model as a file, decoded at a bounded size
(`processing_sevlm.load_image`): a hostile upload (a small PNG of 13000 x 13000 16-bit pixels) costs a bounded amount
of memory. Nothing is fetched from the internet: system fonts, no analytics, no version check. The page speaks the
visitor's language: its messages name its own controls, never a command-line flag, and the numbers behind "92%
alike" are in tooltips.
"""

import html
import os
import sys
import tempfile
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

    def card(self, image, asked, max_new_tokens, num_beams, do_sample, temperature, top_p, seed, visual_weight):
        """Page outputs for a painting: emotion, its line, the scores, the explanation, the similar works."""
        if image is None:
            return "", "", None, "", ""
        try:
            result = self.predict(image, asked, max_new_tokens, num_beams, do_sample, temperature, top_p, seed)
        except ValueError as error:  # not an image, or one too large to decode safely
            return "", f"This file cannot be used as a painting: {html.escape(display_path(str(error)))}", None, "", ""
        how = "asked" if asked not in (None, "", PREDICTED) else "predicted"
        line = f"{how}; the model's probability of it: {result['score']:.0%}"
        similar = ""
        if self.index is not None:
            hits = self.index.search(prediction=result, top_k=self.top_k, visual_weight=float(visual_weight))
            similar = ranking_html(hits) + self.cards_html(hits)
        return result["emotion"], line, dict(result["scores"]), result["explanation"], similar

    def search(self, kind, query, emotion_filter, min_score):
        """Page output of the search tab: how the hits are ranked, the words that were not used, the hit cards; or
        a message saying what is wrong with the query in the page's own terms."""
        if self.index is None:
            return "<p>This app was started without a collection to search.</p>"
        query = (query or "").strip()
        if not query:
            return "<p>Type an emotion mix (awe=0.6, sadness=0.4) or some words (calm, melancholic).</p>"
        try:
            hits = self.index.search(
                emotions=query if kind == MIX else None,
                text=query if kind == WORDS else None,
                top_k=self.top_k,
                emotion=list(emotion_filter or []) or None,
                min_score=float(min_score) if min_score else None,
            )
        except UnusableWords as error:
            hint = f"Try other words, or choose \u201c{MIX}\u201d under \u201cSearch by\u201d and name emotions."
            return f'<p class="sevlm-error">{html.escape(str(error))} {html.escape(hint)}</p>'
        except (KeyError, ValueError) as error:
            message = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
            return f'<p class="sevlm-error">{html.escape(message)}</p>'
        if not hits:
            return ranking_html(hits) + "<p>No work passes these filters: choose fewer emotions or a lower minimum score.</p>"
        return ranking_html(hits) + self.cards_html(hits)

    def cards_html(self, hits):
        return hit_cards_html(hits, [self.index.thumbnail(hit["id"]) for hit in hits])


# ------------------------------------------------------------------------------------------------- layout
def build_app(explainer, examples=(), title="SEVLM"):
    """The Gradio Blocks of the app (launch it with `launch(app, host, port)`). Text that comes from files or folders
    (the title with the model's name, the index folder's name) is escaped, never read as markup."""
    import gradio as gr

    emotions = explainer.emotions
    generation = explainer.model.generation_config
    with gr.Blocks(title=title, analytics_enabled=False) as app:
        gr.HTML(
            f"<h2>{html.escape(title)}: the emotion a painting evokes, and why</h2><p>Upload a painting or pick an "
            "example. The model scores every emotion and explains the most likely one, or the one you choose.</p>"
        )
        with gr.Tab("Painting"):
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
                        visible=explainer.index is not None,
                    )  # fmt: skip
                    run = gr.Button("Explain", variant="primary", elem_id="run")
                    if examples:
                        gr.Examples(examples=[[str(path)] for path in examples], inputs=[image], label="Examples")
                with gr.Column(scale=1):
                    emotion = gr.Textbox(label="Emotion", interactive=False, elem_id="emotion")
                    emotion_line = gr.Markdown(elem_id="emotion-line")
                    scores = gr.Label(num_top_classes=len(emotions), label="Scores of every emotion", elem_id="scores", show_heading=False)
                    explanation = gr.Textbox(label="Because...", interactive=False, lines=2, elem_id="explanation")
            if explainer.index is not None:
                gr.HTML(
                    f"<h3>Works that evoke the same</h3><p>The {explainer.top_k} works of the collection closest to this "
                    "painting in the mix of emotions they evoke (the slider adds how much they look alike).</p>"
                )
            similar = gr.HTML(elem_id="similar", visible=explainer.index is not None)
        inputs = [image, asked, max_new_tokens, num_beams, do_sample, temperature, top_p, seed, visual_weight]
        outputs = [emotion, emotion_line, scores, explanation, similar]
        for event in (image.change, asked.change, run.click):
            event(explainer.card, inputs=inputs, outputs=outputs)

        if explainer.index is not None:
            with gr.Tab("Search the collection"):
                gr.HTML(
                    f'<p>Search the {len(explainer.index)} works of <code id="index-name">{html.escape(display_path(explainer.index.folder))}</code> '
                    "by an emotion mix (<code>awe=0.6, sadness=0.4</code>) or by words (<code>calm, melancholic</code>: how "
                    "the words feel, and any emotions they name).</p>"
                )
                with gr.Row():
                    kind = gr.Radio([MIX, WORDS], value=MIX, label="Search by", elem_id="search-kind")
                    query = gr.Textbox(label="Query", placeholder="awe=0.6, sadness=0.4", elem_id="search-query")
                with gr.Row():
                    emotion_filter = gr.Dropdown(emotions, multiselect=True, label="Only works whose predicted emotion is", elem_id="search-emotion")
                    min_score = gr.Slider(0.0, 1.0, value=0.0, step=0.05, label="Minimum score of the predicted emotion", elem_id="search-min-score")
                search = gr.Button("Search", variant="primary", elem_id="search")
                hits = gr.HTML(elem_id="search-hits")
                for event in (search.click, query.submit):
                    event(explainer.search, inputs=[kind, query, emotion_filter, min_score], outputs=[hits])
    return app


def launch(app, host="127.0.0.1", port=7860, **kwargs):
    """Serve the app offline: system fonts (no font download), no SSR node server, errors shown on the page."""
    import gradio as gr

    theme = gr.themes.Default(font=SYSTEM_FONTS, font_mono=MONO_FONTS)
    return app.launch(server_name=host, server_port=port, theme=theme, css=GALLERY_CSS, ssr_mode=False, show_error=True, **kwargs)


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


def serve(model_name_or_path, index=None, examples=None, host="127.0.0.1", port=7860, device=None, top_k=8):
    """Load the model (and the index), build the page and serve it. Loading errors are raised before anything
    listens."""
    from sevlm.index.store import EmotionIndex
    from sevlm.loading import load_model_and_processor, pick_device

    model, processor = load_model_and_processor(model_name_or_path, pick_device(device))
    collection = EmotionIndex.load(index) if index else None
    explainer = Explainer(model, processor, collection, top_k=top_k)
    title = f"SEVLM ({Path(str(model_name_or_path)).name})"
    app = build_app(explainer, example_paintings(examples, collection), title=title)
    return launch(app, host, port)
