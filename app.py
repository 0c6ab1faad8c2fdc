"""SEVLM web app: upload a painting, see the emotion it evokes, the score of every emotion and why.

    python app.py                                             # the demo model (outputs/sevlm-demo), 127.0.0.1:7860
    python app.py --index outputs/index-demo                  # + works of a collection that evoke the same
    python app.py --model your-name/sevlm-artemis --host 0.0.0.0 --port 8080

A Gradio app (`pip install -e ".[app]"`), `app.py` at the root as Hugging Face Spaces expect. Every prediction goes
through `pipeline_sevlm.predict_batch`, the path the pipeline and sevlm-predict use. Nothing is fetched from the
internet: system fonts, no analytics, no version check, the model from a folder (or the local Hub cache).
"""

import argparse
import html
import os
import sys
import tempfile
from pathlib import Path

# Gradio reads these at import: no usage analytics, no version check against api.gradio.app.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from sevlm.images import IMAGE_EXTENSIONS, find_images
from sevlm.index.store import DEMO_MODEL, GALLERY_CSS, EmotionIndex, hit_cards_html, load_model, predict_function  # noqa: E402
from sevlm.io import display_path  # noqa: E402

PREDICTED = "(the predicted emotion)"
DEMO_DATASET = "data/demo"
EXAMPLE_COUNT = 6
SYSTEM_FONTS = ["system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica Neue", "Arial", "sans-serif"]
MONO_FONTS = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"]


def build_parser():
    parser = argparse.ArgumentParser(prog="app.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", "--model_name_or_path", default=DEMO_MODEL, help=f"SEVLM folder or Hub id (default: {DEMO_MODEL}).")
    parser.add_argument("--index", help="An emotion index (sevlm-index) of a collection: shows the works that evoke the same, and a search tab.")
    parser.add_argument(
        "--examples",
        nargs="*",
        help=f"Example paintings: files, folders or globs (default: the first {EXAMPLE_COUNT} paintings of the "
        f"{DEMO_DATASET} test split, when it exists).",
    )
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"), help="Address to listen on (default: 127.0.0.1; 0.0.0.0 for every interface).")
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)), help="Port (default: 7860).")
    parser.add_argument("--device", help="cuda, mps or cpu (default: the device accelerate picks).")
    parser.add_argument("--top_k", type=int, default=8, help="Works shown in the galleries (default: 8).")
    return parser


# --------------------------------------------------------------------------------------------- prediction
class Explainer:
    """The model, its processor and an optional index; turns the page's inputs into the page's outputs."""

    def __init__(self, model, processor, index=None, top_k=8):
        self.model, self.processor, self.index, self.top_k = model, processor, index, top_k
        self.emotions = list(model.config.emotions)
        predict_function(model)  # a folder whose code predates predict_batch fails at start, not at the first painting
        if index is not None:
            index.check_model(model, fingerprint=True)

    def predict(self, image, asked=None, max_new_tokens=None, num_beams=1, do_sample=False, temperature=1.0, top_p=1.0, seed=42):
        """`predict_batch` result (with `image_embeds` when an index is loaded) of one PIL image."""
        import torch
        from transformers import set_seed

        from processing_sevlm import load_image

        generation = {"max_new_tokens": int(max_new_tokens), "num_beams": int(num_beams)} if max_new_tokens else {"num_beams": int(num_beams)}
        if do_sample:
            generation.update(do_sample=True, temperature=float(temperature), top_p=float(top_p))
            set_seed(int(seed))
        emotions = None if asked in (None, "", PREDICTED) else [asked]
        with torch.inference_mode():
            return predict_function(self.model)(
                self.model,
                self.processor,
                [load_image(image)],
                emotions=emotions,
                return_image_embeds=self.index is not None,
                generate_kwargs=generation,
            )[0]

    def card(self, image, asked, max_new_tokens, num_beams, do_sample, temperature, top_p, seed, visual_weight):
        """Page outputs for a painting: emotion, its line, the scores, the explanation, the similar works."""
        if image is None:
            return "", "", None, "", ""
        result = self.predict(image, asked, max_new_tokens, num_beams, do_sample, temperature, top_p, seed)
        how = "asked" if asked not in (None, "", PREDICTED) else "predicted"
        line = f"{how}; the model's probability of it: {result['score']:.0%}"
        similar = ""
        if self.index is not None:
            hits = self.index.search(prediction=result, top_k=self.top_k, visual_weight=float(visual_weight))
            similar = self.cards_html(hits)
        return result["emotion"], line, dict(result["scores"]), result["explanation"], similar

    def search(self, kind, query, emotion_filter, min_score):
        """Page output of the search tab: hit cards, or a message saying what is wrong with the query."""
        if self.index is None:
            return "<p>No index loaded: start the app with --index DIR.</p>"
        query = (query or "").strip()
        if not query:
            return "<p>Type an emotion mix (awe=0.6,sadness=0.4) or words (calm, melancholic).</p>"
        try:
            hits = self.index.search(
                emotions=query if kind == "emotion mix" else None,
                text=query if kind == "words" else None,
                top_k=self.top_k,
                emotion=list(emotion_filter or []) or None,
                min_score=float(min_score) if min_score else None,
            )
        except (KeyError, ValueError) as error:
            return f'<p class="sevlm-error">{html.escape(str(error))}</p>'
        if not hits:
            return "<p>No work passes these filters.</p>"
        return self.cards_html(hits)

    def cards_html(self, hits):
        return hit_cards_html(hits, [self.index.thumbnail(hit["id"]) for hit in hits])


# ------------------------------------------------------------------------------------------------- layout
def build_app(explainer, examples=(), title="SEVLM"):
    """The Gradio Blocks of the app (launch it with `launch(app, host, port)`)."""
    import gradio as gr

    emotions = explainer.emotions
    generation = explainer.model.generation_config
    with gr.Blocks(title=title, analytics_enabled=False) as app:
        gr.Markdown(
            f"## {title}: the emotion a painting evokes, and why\n"
            "Upload a painting or pick an example. The model scores every emotion and explains the most likely one, or "
            "the one you choose."
        )
        with gr.Tab("Painting"):
            with gr.Row():
                with gr.Column(scale=1):
                    image = gr.Image(type="pil", label="Painting", sources=["upload", "clipboard"], elem_id="painting", height=320)
                    asked = gr.Dropdown([PREDICTED, *emotions], value=PREDICTED, label="Explain", elem_id="asked-emotion")
                    with gr.Accordion("Generation settings", open=False):
                        max_new_tokens = gr.Slider(1, 64, value=int(generation.max_new_tokens or 25), step=1, label="Most new tokens")
                        num_beams = gr.Slider(1, 8, value=int(generation.num_beams or 1), step=1, label="Beams (1: greedy)")
                        do_sample = gr.Checkbox(value=False, label="Sample instead of greedy / beam search")
                        temperature = gr.Slider(0.1, 2.0, value=1.0, step=0.05, label="Temperature (sampling)")
                        top_p = gr.Slider(0.05, 1.0, value=1.0, step=0.05, label="Top-p (sampling)")
                        seed = gr.Number(value=42, precision=0, label="Seed (sampling)")
                    visual_weight = gr.Slider(
                        0.0, 1.0, value=0.0, step=0.05, label="Similar works: weight of visual similarity (0: emotions only)",
                        visible=explainer.index is not None,
                    )
                    run = gr.Button("Explain", variant="primary", elem_id="run")
                    if examples:
                        gr.Examples(examples=[[str(path)] for path in examples], inputs=[image], label="Examples")
                with gr.Column(scale=1):
                    emotion = gr.Textbox(label="Emotion", interactive=False, elem_id="emotion")
                    emotion_line = gr.Markdown(elem_id="emotion-line")
                    scores = gr.Label(num_top_classes=len(emotions), label="Scores of every emotion", elem_id="scores", show_heading=False)
                    explanation = gr.Textbox(label="Because...", interactive=False, lines=2, elem_id="explanation")
            if explainer.index is not None:
                gr.Markdown(
                    f"### Works that evoke the same\nThe {explainer.top_k} works of the collection whose emotion scores are "
                    "closest to this painting's (Hellinger distance; the slider blends in visual similarity)."
                )
            similar = gr.HTML(elem_id="similar", visible=explainer.index is not None)
        inputs = [image, asked, max_new_tokens, num_beams, do_sample, temperature, top_p, seed, visual_weight]
        outputs = [emotion, emotion_line, scores, explanation, similar]
        for event in (image.change, asked.change, run.click):
            event(explainer.card, inputs=inputs, outputs=outputs)

        if explainer.index is not None:
            with gr.Tab("Search the collection"):
                gr.Markdown(
                    f"Search {len(explainer.index)} works of `{display_path(explainer.index.folder)}` by an emotion mix "
                    "(`awe=0.6,sadness=0.4`) or by words (`calm, melancholic`: their VAD profile and any emotion names)."
                )
                with gr.Row():
                    kind = gr.Radio(["emotion mix", "words"], value="emotion mix", label="Search by", elem_id="search-kind")
                    query = gr.Textbox(label="Query", placeholder="awe=0.6,sadness=0.4", elem_id="search-query")
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
def example_paintings(inputs=None, dataset_path=DEMO_DATASET, count=EXAMPLE_COUNT):
    """Example files: `inputs` (files, folders, globs), else the first paintings of the demo test split saved as
    PNG files in a temporary folder, else none."""
    if inputs:
        paths, problems = find_images(inputs, IMAGE_EXTENSIONS)
        for item, reason in problems:
            print(f"--examples {display_path(item)}: {reason}", file=sys.stderr)
        return paths
    if not os.path.isdir(dataset_path):
        return []
    import datasets

    split = datasets.load_from_disk(dataset_path)["test"]
    folder = Path(tempfile.mkdtemp(prefix="sevlm-app-examples-"))
    paths = []
    for row in split.select(range(min(count, len(split)))):
        path = folder / (str(row["painting_id"]).replace("/", "_") + ".png")
        row["image"].convert("RGB").save(path)
        paths.append(path)
    return paths


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        import gradio  # noqa: F401
    except ImportError:
        print('app.py needs Gradio, the "app" extra: pip install -e ".[app]"', file=sys.stderr)
        return 1
    try:
        model, processor = load_model(args.model, args.device)
        index = EmotionIndex.load(args.index) if args.index else None
        explainer = Explainer(model, processor, index, top_k=args.top_k)
    except (OSError, ValueError) as error:
        print(f"app.py: {display_path(str(error))}", file=sys.stderr)
        return 1
    app = build_app(explainer, example_paintings(args.examples), title=f"SEVLM ({Path(str(args.model)).name})")
    launch(app, args.host, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
