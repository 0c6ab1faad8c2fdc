"""predict_sevlm.py: inputs (files, folders, globs), JSONL/CSV output, unreadable files, cards, the CLI end to end."""

import csv
import io
import json
import os
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout

import numpy as np
import pytest
from helpers import build_tiny, random_images
from PIL import Image

import sevlm.prediction as prediction
from pipeline_sevlm import SevlmArtEmotionPipeline
from sevlm.cli import predict as predict_sevlm
from sevlm.cli.predict import build_parser, main, parse_args
from sevlm.generation import generation_kwargs
from sevlm.hub import add_pipeline_to_folder
from sevlm.images import find_images
from sevlm.io import OUTPUT_RECORD
from sevlm.render import CARD_SIZE, COLORS, _color, draw_card, make_card

NON_ASCII = "Ölgemälde – ça ü 夜.png"


@pytest.fixture(scope="module")
def pipe(trained_tiny):
    model, processor, _ = trained_tiny
    return SevlmArtEmotionPipeline(model=model, processor=processor, device="cpu")


@pytest.fixture(scope="module")
def gallery(trained_tiny, tmp_path_factory):
    """A folder of paintings: nested, a non-ASCII name, two files with the same stem, a corrupt file, a text file."""
    _, _, images = trained_tiny
    root = tmp_path_factory.mktemp("gallery")
    (root / "nested" / "deeper").mkdir(parents=True)
    images[0].save(root / "a.png")
    images[1].save(root / "nested" / NON_ASCII)
    images[2].convert("RGBA").save(root / "nested" / "deeper" / "a.png")  # same stem as the first
    images[3].save(root / "d.JPG")
    (root / "broken.jpg").write_bytes(b"this is not a JPEG")
    (root / "notes.txt").write_text("not an image")
    return root


def run_main(argv):
    stdout, stderr = io.StringIO(), io.StringIO()
    with redirect_stdout(stdout), redirect_stderr(stderr):
        code = main(argv)
    return code, stdout.getvalue(), stderr.getvalue()


def test_find_images_files_folders_globs(gallery):
    paths, problems = find_images([str(gallery), str(gallery / "a.png"), str(gallery / "notes.txt"), str(gallery / "missing.png")])
    names = [path.name for path in paths]
    assert names == ["a.png", "broken.jpg", "d.JPG", "a.png", NON_ASCII, "notes.txt"]  # files named directly are always tried
    assert problems == [(str(gallery / "missing.png"), "no such file or folder")]
    paths, problems = find_images([str(gallery / "**" / "*.png"), str(gallery / "*.gif")])
    assert sorted(path.name for path in paths) == sorted(["a.png", "a.png", NON_ASCII])
    assert problems == [(str(gallery / "*.gif"), "pattern matches no image files")]


def test_jsonl_rows_skip_unreadable_files(pipe, gallery, tmp_path, monkeypatch):
    monkeypatch.setattr(prediction, "load_pipeline", lambda *args, **kwargs: pipe)
    output = tmp_path / "out" / "predictions.jsonl"
    code, _, stderr = run_main([str(gallery), "--output", str(output), "--batch_size", "2", "--no_progress"])
    assert code == 0
    rows = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert [os.path.relpath(row["file"], gallery) for row in rows] == [
        "a.png", "d.JPG", os.path.join("nested", "deeper", "a.png"), os.path.join("nested", NON_ASCII),
    ]  # fmt: skip
    assert "broken.jpg" in stderr and "cannot be read" in stderr and "Predicted 4 of 5 images" in stderr
    assert "1 skipped: not a supported image (" in stderr and "notes.txt" in stderr  # said, as sevlm-index says it
    expected = pipe([row["file"] for row in rows])  # d.JPG is lossy: compare with the files, not the arrays
    for row, want in zip(rows, expected):
        assert (row["emotion"], row["explanation"]) == (want["emotion"], want["explanation"])
        assert row["score"] == pytest.approx(want["score"], abs=1e-5) and list(row["scores"]) == list(want["scores"])
    assert NON_ASCII in output.read_text(encoding="utf-8")  # written as UTF-8, not escaped


def test_csv_with_emotion_and_generation_flags(pipe, gallery, tmp_path, monkeypatch):
    monkeypatch.setattr(prediction, "load_pipeline", lambda *args, **kwargs: pipe)
    output = tmp_path / "predictions.csv"
    argv = [str(gallery / "a.png"), str(gallery / "d.JPG"), "--output", str(output), "--emotion", "awe", "--max_new_tokens", "3", "--num_beams", "2"]
    code, _, _ = run_main(argv + ["--no_progress"])
    assert code == 0
    with open(output, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 and {row["emotion"] for row in rows} == {"awe"}
    assert list(rows[0])[:4] == ["file", "emotion", "score", "explanation"] and "score_something_else" in rows[0]
    assert all(float(row["score"]) == pytest.approx(float(row["score_awe"])) for row in rows)
    assert all(len(row["explanation"].split()) <= 3 for row in rows)


def test_stdout_exit_codes_and_bad_arguments(pipe, gallery, monkeypatch):
    monkeypatch.setattr(prediction, "load_pipeline", lambda *args, **kwargs: pipe)
    code, stdout, _ = run_main([str(gallery / "a.png"), "--no_progress"])
    assert code == 0 and json.loads(stdout)["emotion"] == "sadness"
    code, stdout, stderr = run_main([str(gallery / "broken.jpg"), "--no_progress"])
    assert code == 1 and stdout == "" and "Predicted 0 of 1" in stderr
    code, _, stderr = run_main([str(gallery / "nothing-here")])
    assert code == 1 and "No images to predict" in stderr
    code, _, stderr = run_main([str(gallery / "a.png"), "--emotion", "joy"])
    assert code == 1 and "not one of the model's emotions" in stderr
    code, _, stderr = run_main([str(gallery / "a.png"), "--device", "quantum"])
    assert code == 1 and stderr.startswith("--device quantum: ")
    with pytest.raises(SystemExit), redirect_stderr(io.StringIO()):
        parse_args(["x.png", "--output", "out.txt"])


def test_help_explains_every_flag(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    flags = ["--model_name_or_path", "--output", "--cards", "--attention_maps", "--batch_size", "--device", "--emotion",
             "--extensions", "--max_image_pixels", "--max_new_tokens", "--num_beams", "--do_sample", "--temperature",
             "--top_p", "--top_k", "--seed", "--no_progress"]  # fmt: skip
    for flag in flags:
        assert flag in text, flag
    assert all(action.help for action in build_parser()._actions)


def test_card_png(pipe, tmp_path):
    painting = Image.new("RGB", (300, 200), (220, 30, 30))
    result = pipe(painting)
    path = make_card(painting, result, tmp_path / "cards" / "red.png", title="red.png")
    with Image.open(path) as card:
        assert card.format == "PNG" and card.size == CARD_SIZE
        pixels = np.asarray(card.convert("RGB")).astype(int)
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50  # text, bars and the painting, not a blank canvas
    red = (pixels[..., 0] > 180) & (pixels[..., 1] < 80) & (pixels[..., 2] < 80)
    assert red[:, : CARD_SIZE[0] // 2].mean() > 0.2  # the painting fills much of the left half
    dark = pixels.sum(-1) < 200
    assert dark[:, CARD_SIZE[0] // 2 :].mean() > 0.005  # text on the right half


@pytest.mark.slow
def test_cli_in_fresh_process_with_cards(trained_tiny, gallery, latin1_gallery, tmp_path):
    """The real command line: model folder loaded with its own pipeline, outside the repo, offline; a file name
    that is not UTF-8 on a real UTF-8 stdout / stderr."""
    model, processor, _ = trained_tiny
    folder = tmp_path / "model"
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    add_pipeline_to_folder(folder)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf_home"), OMP_NUM_THREADS="1", PYTHONIOENCODING="utf-8")
    command = [
        sys.executable, "-m", "sevlm.cli.predict", str(gallery), os.path.join(latin1_gallery, NOT_UTF8),
        "--model", str(folder), "--output", "out.jsonl", "--cards", "cards", "--batch_size", "3", "--device", "cpu",
    ]  # fmt: skip
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "broken.jpg" in result.stderr and "Predicted 5 of 6 images" in result.stderr and "Predicting" in result.stderr
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [row["emotion"] for row in rows] == ["sadness", "anger", "something else", "awe", "sadness"]
    assert rows[-1]["file"] == os.path.join(latin1_gallery, NOT_UTF8_SHOWN)
    cards = sorted(path.name for path in (tmp_path / "cards").iterdir() if path.name != OUTPUT_RECORD)
    assert cards == sorted(["a.png", "a-2.png", "d.png", NON_ASCII, NOT_UTF8_SHOWN])
    assert sorted(os.path.basename(row["card"]) for row in rows) == cards
    with Image.open(tmp_path / "cards" / NON_ASCII) as card:
        assert card.size == CARD_SIZE


# ----------------------------------------------------------------------------------- the output file is sacred
class InterruptingPipe:
    """The real pipeline, interrupted (CTRL-C) at its `at`-th call."""

    def __init__(self, pipe, at):
        self.pipe, self.at, self.calls = pipe, at, 0

    @property
    def emotions(self):
        return self.pipe.emotions

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.calls == self.at:
            raise KeyboardInterrupt
        return self.pipe(*args, **kwargs)


def leftovers(folder):
    return sorted(name for name in os.listdir(folder) if name.startswith("."))


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_existing_output_replaced_only_by_a_file_with_rows(pipe, gallery, tmp_path, monkeypatch, suffix):
    output = tmp_path / f"prev{suffix}"
    output.write_text("earlier results\n", encoding="utf-8")
    os.chmod(output, 0o640)
    images = [str(gallery / "a.png"), str(gallery / "d.JPG"), str(gallery / "nested" / NON_ASCII)]
    argv = ["--output", str(output), "--batch_size", "1", "--no_progress"]

    # Without --overwrite an existing file is never replaced, and that is said before the model is loaded.
    monkeypatch.setattr(prediction, "load_pipeline", lambda *args, **kwargs: pytest.fail("loaded the model"))
    code, _, stderr = run_main([*images, *argv])
    assert code == 1 and "already exists. Pass --overwrite" in stderr
    assert output.read_text(encoding="utf-8") == "earlier results\n"
    argv.append("--overwrite")

    # Nothing predicted (the only input is corrupt): the old file stays as it was.
    monkeypatch.setattr(prediction, "load_pipeline", lambda *args, **kwargs: pipe)
    code, _, stderr = run_main([str(gallery / "broken.jpg"), *argv])
    assert code == 1 and output.read_text(encoding="utf-8") == "earlier results\n"
    assert f"{output} was left unchanged" in stderr and leftovers(tmp_path) == []

    # CTRL-C before the first row: untouched.
    monkeypatch.setattr(prediction, "load_pipeline", lambda *args, **kwargs: InterruptingPipe(pipe, at=1))
    code, _, stderr = run_main([*images, *argv])
    assert code == 130 and output.read_text(encoding="utf-8") == "earlier results\n"
    assert "Interrupted after 0 of 3 images" in stderr and leftovers(tmp_path) == []

    # CTRL-C after two rows: the rows written so far replace the old file, and the user is told.
    monkeypatch.setattr(prediction, "load_pipeline", lambda *args, **kwargs: InterruptingPipe(pipe, at=3))
    code, _, stderr = run_main([*images, *argv])
    assert code == 130 and "Interrupted after 2 of 3 images" in stderr and "(replaced the existing file)" in stderr
    text = output.read_text(encoding="utf-8")
    assert "earlier results" not in text and text.count("a.png") == 1 and text.count("d.JPG") == 1 and NON_ASCII not in text
    assert leftovers(tmp_path) == [] and os.stat(output).st_mode & 0o777 == 0o640  # the old file's permissions

    # A complete run: replaced, said so.
    monkeypatch.setattr(prediction, "load_pipeline", lambda *args, **kwargs: pipe)
    code, _, stderr = run_main([*images, *argv])
    assert code == 0 and f"Predicted 3 of 3 images to {output} (replaced the existing file)." in stderr
    assert NON_ASCII in output.read_text(encoding="utf-8") and leftovers(tmp_path) == []
    fresh = tmp_path / "new" / f"fresh{suffix}"
    code, _, stderr = run_main([images[0], "--output", str(fresh), "--no_progress"])
    assert code == 0 and f"to {fresh}." in stderr and "(replaced" not in stderr
    assert os.stat(fresh).st_mode & 0o777 == 0o666 & ~current_umask()  # not mkstemp's 0600


def current_umask():
    umask = os.umask(0)
    os.umask(umask)
    return umask


# ---------------------------------------------------------------------------------- file names that are not UTF-8
NOT_UTF8 = os.fsdecode(b"caf\xe9.png")  # Latin-1 bytes, as in old zip archives; Python holds them as surrogates
NOT_UTF8_SHOWN = "caf\\xe9.png"  # `display_path`


@pytest.fixture()
def latin1_gallery(trained_tiny, tmp_path):
    _, _, images = trained_tiny
    root = tmp_path / "latin1"
    root.mkdir()
    images[0].save(os.path.join(root, NOT_UTF8))
    images[1].save(root / "b.png")
    with open(os.path.join(root, os.fsdecode(b"d\xe9fect.jpg")), "wb") as handle:
        handle.write(b"not an image")
    return root


def test_names_that_are_not_utf8_everywhere(pipe, latin1_gallery, tmp_path, monkeypatch):
    monkeypatch.setattr(prediction, "load_pipeline", lambda *args, **kwargs: pipe)
    cards = tmp_path / "cards"
    code, stdout, stderr = run_main([str(latin1_gallery), "--cards", str(cards), "--no_progress"])
    assert code == 0 and "Predicted 2 of 3 images" in stderr
    stdout.encode("utf-8"), stderr.encode("utf-8")  # what a UTF-8 terminal or pipe accepts
    assert f"skipped {latin1_gallery}/d\\xe9fect.jpg: cannot be read" in stderr
    rows = [json.loads(line) for line in stdout.splitlines()]
    assert [os.path.basename(row["file"]) for row in rows] == ["b.png", NOT_UTF8_SHOWN]
    assert sorted(set(os.listdir(cards)) - {OUTPUT_RECORD}) == sorted(["b.png", NOT_UTF8_SHOWN])  # card names are printable too
    assert all(os.path.isfile(row["card"]) for row in rows)  # ... so that the rows name real files

    output = tmp_path / "out.csv"
    code, _, _ = run_main([str(latin1_gallery), "--output", str(output), "--no_progress"])
    with open(output, encoding="utf-8", newline="") as handle:
        assert [os.path.basename(row["file"]) for row in csv.DictReader(handle)] == ["b.png", NOT_UTF8_SHOWN]


# ---------------------------------------------------------------------------------------- cards never cost rows
@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_failed_card_keeps_the_row_and_the_columns(pipe, gallery, tmp_path, monkeypatch, suffix):
    monkeypatch.setattr(prediction, "load_pipeline", lambda *args, **kwargs: pipe)
    real_make_card = make_card

    def make_card_failing_first(image, result, target, **kwargs):
        if kwargs.get("title") == "a.png":
            raise RuntimeError("disk full")
        return real_make_card(image, result, target, **kwargs)

    monkeypatch.setattr(prediction, "make_card", make_card_failing_first)
    output = tmp_path / f"out{suffix}"
    cards = tmp_path / "cards"
    code, _, stderr = run_main([str(gallery / "a.png"), str(gallery / "d.JPG"), "--output", str(output), "--cards", str(cards), "--no_progress"])
    assert code == 0 and "Predicted 2 of 2 images" in stderr
    assert f"card for {gallery / 'a.png'} not written (disk full); the prediction is kept" in stderr
    if suffix == ".csv":
        with open(output, encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
        assert list(rows[0])[:5] == ["file", "emotion", "score", "explanation", "card"]
        assert rows[0]["card"] == "" and rows[1]["card"] == str(cards / "d.png")
    else:
        rows = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
        assert rows[0]["card"] is None and rows[1]["card"] == str(cards / "d.png")


def test_card_text_is_plain_text(tmp_path):
    """File names, class names and explanations with `$...$` are drawn as they are, never as matplotlib math."""
    result = {"emotion": "$x$", "score": 0.6, "scores": {"$x$": 0.6, "cost $5": 0.4}, "explanation": r"it costs $\frac{1}$ now"}
    title = r"$\frac{1}$ costs $5 or $6.png"  # two $...$ pairs, neither valid math
    figure = draw_card(Image.new("RGB", (64, 48), "white"), result, title=title)
    assert title in [text.get_text() for text in figure.texts]
    path = make_card(Image.new("RGB", (64, 48), "white"), result, tmp_path / "card.png", title=title)
    with Image.open(path) as card:
        assert card.size == CARD_SIZE


# ----------------------------------------------------------------------------- impossible values are argument errors
@pytest.mark.parametrize(
    "flags, message",
    [
        (["--max_new_tokens", "0"], "--max_new_tokens must be at least 1, got 0"),
        (["--num_beams", "0"], "--num_beams must be at least 1, got 0"),
        (["--num_beams", "-2"], "--num_beams must be at least 1, got -2"),
        (["--do_sample", "--top_k", "-1"], "--top_k must be 0 (off) or more, got -1"),
        (["--do_sample", "--temperature", "0"], "--temperature must be above 0, got 0.0"),
        (["--do_sample", "--temperature", "nan"], "--temperature must be above 0, got nan"),
        (["--do_sample", "--top_p", "0"], "--top_p must be in (0, 1], got 0.0"),
        (["--do_sample", "--top_p", "1.5"], "--top_p must be in (0, 1], got 1.5"),
        (["--temperature", "0.7"], "--temperature only apply when sampling: add --do_sample"),
        (["--batch_size", "0"], "--batch_size must be at least 1"),
        (["--max_image_pixels", "0"], "--max_image_pixels must be at least 1"),
        (["--output", "x.csv", "--attention_maps"], "--attention_maps draws on cards"),
    ],
)
def test_impossible_values_are_argument_errors(flags, message):
    stderr = io.StringIO()
    with pytest.raises(SystemExit) as exit_info, redirect_stderr(stderr):
        parse_args(["x.png", *flags])
    assert exit_info.value.code == 2 and message in stderr.getvalue()


def test_possible_generation_values_pass():
    args = parse_args(["x.png", "--do_sample", "--top_k", "0", "--top_p", "1", "--temperature", "0.5", "--num_beams", "1"])
    assert generation_kwargs(args) == {"num_beams": 1, "temperature": 0.5, "top_p": 1.0, "top_k": 0, "do_sample": True}


def test_decompression_bomb_names_the_file(pipe, trained_tiny, tmp_path, monkeypatch):
    _, _, images = trained_tiny
    images[0].save(tmp_path / "small.png")  # 48 x 40 = 1,920 pixels
    Image.new("RGB", (200, 200), "white").save(tmp_path / "huge.png")  # 40,000 pixels, a few hundred bytes
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2000)  # Pillow refuses above twice this
    monkeypatch.setattr(prediction, "load_pipeline", lambda *args, **kwargs: pipe)
    code, stdout, stderr = run_main([str(tmp_path / "huge.png"), str(tmp_path / "small.png"), "--no_progress"])
    assert code == 0 and "Predicted 1 of 2 images" in stderr and len(stdout.splitlines()) == 1
    assert f"skipped {tmp_path / 'huge.png'}: cannot be read ({tmp_path / 'huge.png'} is larger than the decompression-bomb limit" in stderr
    assert "pass --max_image_pixels" in stderr
    code, stdout, stderr = run_main([str(tmp_path / "huge.png"), "--max_image_pixels", "40000", "--no_progress"])
    assert code == 0 and "Predicted 1 of 1 images" in stderr


# ------------------------------------------------------------------------------------------------ any taxonomy
PRODUCT_EMOTIONS = ["delighted", "satisfied", "disappointed", "frustrated"]


def test_cards_for_another_taxonomy(trained_tiny, tmp_path):
    model, processor = build_tiny(emotions=PRODUCT_EMOTIONS)
    result = SevlmArtEmotionPipeline(model=model.eval(), processor=processor, device="cpu")(Image.new("RGB", (64, 64), "white"))
    assert list(result["scores"]) == PRODUCT_EMOTIONS
    colors = [_color(name, PRODUCT_EMOTIONS) for name in PRODUCT_EMOTIONS]
    assert len(set(colors)) == 4 and not set(colors) & set(COLORS.values())  # four colours of their own
    path = make_card(Image.new("RGB", (64, 64), "white"), result, tmp_path / "card.png")
    with Image.open(path) as card:
        pixels = np.asarray(card.convert("RGB")).astype(int)[:, CARD_SIZE[0] // 2 :]
    for name, color in zip(PRODUCT_EMOTIONS, colors):
        rgb = np.array([int(color[i : i + 2], 16) for i in (1, 3, 5)])
        if name != result["emotion"]:
            rgb = np.rint(0.45 * rgb + 0.55 * 255)  # the other bars are drawn lighter
        assert (np.abs(pixels - rgb).max(-1) <= 2).sum() > 20, name  # every class's bar in its colour
    # ArtEmis's names keep their group colours, in any taxonomy.
    assert _color("awe", ["awe", "joy"]) == COLORS["positive"] and _color("joy", ["awe", "joy"]) == "#ff7f0e"


@pytest.mark.parametrize("count", [2, 9, 20])
def test_score_chart_fits_2_to_20_classes(count):
    names = [f"a rather long class name {index}" for index in range(count)]
    scores = dict(zip(names, np.full(count, 1 / count)))
    figure = draw_card(Image.new("RGB", (64, 64)), {"emotion": names[-1], "score": 1 / count, "scores": scores, "explanation": "x"})
    renderer = figure.canvas.get_renderer()
    bars = figure.axes[-1]
    labels = [text for text in bars.texts if text.get_text() and not text.get_text().endswith("%")]
    assert len(labels) == count
    boxes = [text.get_window_extent(renderer) for text in labels]
    for upper, lower in zip(boxes, boxes[1:]):
        assert upper.y0 >= lower.y1 - 0.5, "labels overlap"
    width, height = CARD_SIZE
    for box in boxes:
        assert 0.49 * width <= box.x0 and box.x1 <= bars.get_window_extent(renderer).x0  # left of the bars, right of the image
        assert 0.3 * height <= box.y0 and box.y1 <= 0.88 * height  # below the header, above the explanation


def test_a_card_of_thousands_of_classes_draws_the_highest_and_sums_the_rest():
    """3,000 classes would be 3,000 bars at 6 points (a black block): the card draws the highest scores, the shown
    class among them, in class order, and one row for the others, with labels that do not overlap."""
    from sevlm.render import MAX_CARD_ROWS

    count = 3000
    names = [f"class {index}" for index in range(count)]
    values = np.full(count, 0.3 / (count - 4))
    values[[10, 2000, 2999, 5]] = [0.4, 0.2, 0.1, 0.0]  # class 5, shown, has the lowest score
    scores = dict(zip(names, values))
    figure = draw_card(Image.new("RGB", (64, 64)), {"emotion": "class 5", "score": values[5], "scores": scores, "explanation": "x"})
    bars = figure.axes[-1]
    labels = [text.get_text() for text in bars.texts if text.get_text() and not text.get_text().endswith("%")]
    assert len(labels) == MAX_CARD_ROWS < 30
    assert {"class 5", "class 10", "class 2000", "class 2999"} <= set(labels[:-1])
    drawn = [int(label.split()[1]) for label in labels[:-1]]
    assert drawn == sorted(drawn)  # in class order
    assert labels[-1] == f"{count - MAX_CARD_ROWS + 1} other classes"
    others = 1.0 - sum(values[index] for index in drawn)
    assert [text.get_text() for text in bars.texts if text.get_text().endswith("%")][-1] == f"{others:.0%}"
    renderer = figure.canvas.get_renderer()
    boxes = [text.get_window_extent(renderer) for text in bars.texts if text.get_text() and not text.get_text().endswith("%")]
    for upper, lower in zip(boxes, boxes[1:]):
        assert upper.y0 >= lower.y1 - 0.5, "labels overlap"


# ------------------------------------------------------------------------------------------------ attention maps
def test_heat_map_over_the_painting(tmp_path):
    """A hand-made result: attention on the top-left patch only. The heat map colours that corner of the painting
    and leaves the rest as it is."""
    painting = Image.new("RGB", (200, 200), (128, 128, 128))
    grid = np.zeros((4, 4))
    grid[0, 0] = 1.0
    result = {"emotion": "awe", "score": 0.5, "scores": {"awe": 0.5, "fear": 0.5}, "explanation": "x", "attention_map": grid.tolist()}
    figure = draw_card(painting, result)
    figure.canvas.draw()
    pixels = np.asarray(figure.canvas.buffer_rgba())[..., :3].astype(int)
    axes = figure.axes[0]

    def pixel(x, y):  # image coordinates -> card pixel
        column, row = axes.transData.transform((x, y))
        return pixels[int(round(CARD_SIZE[1] - row)), int(round(column))]

    assert np.abs(pixel(25, 25) - 128).max() > 40  # the looked-at corner is coloured
    assert np.abs(pixel(175, 175) - 128).max() <= 2 and np.abs(pixel(25, 175) - 128).max() <= 2  # elsewhere: the painting
    assert "heat map: where the explanation looked" in [text.get_text() for text in figure.texts]
    without = draw_card(painting, {key: value for key, value in result.items() if key != "attention_map"})
    assert "heat map: where the explanation looked" not in [text.get_text() for text in without.texts]
    with pytest.raises(ValueError, match="2-D grid"):
        draw_card(painting, {**result, "attention_map": [0.1, 0.2]})


class AttentionPipe:
    """The real pipeline plus a hand-made attention map (hot in the top-left patch) when asked for one."""

    def __init__(self, pipe):
        self.pipe, self.asked = pipe, []

    @property
    def emotions(self):
        return self.pipe.emotions

    def _sanitize_parameters(self, return_attention_map=False, **kwargs):
        return {}, {}, {}

    def __call__(self, images, return_attention_map=False, **kwargs):
        self.asked.append(return_attention_map)
        results = self.pipe(images, **kwargs)
        if return_attention_map:
            for result in results:
                result["attention_map"] = [[1.0, 0.0], [0.0, 0.0]]
        return results


def test_attention_maps_flag(pipe, gallery, tmp_path, monkeypatch):
    attention = AttentionPipe(pipe)
    monkeypatch.setattr(prediction, "load_pipeline", lambda *args, **kwargs: attention)
    cards = tmp_path / "cards"
    code, stdout, _ = run_main([str(gallery / "a.png"), "--cards", str(cards), "--attention_maps", "--no_progress"])
    assert code == 0 and attention.asked == [True]
    assert json.loads(stdout)["attention_map"] == [[1.0, 0.0], [0.0, 0.0]]
    output = tmp_path / "out.csv"
    argv = ["--cards", str(cards), "--attention_maps", "--output", str(output), "--no_progress", "--overwrite"]
    code, _, _ = run_main([str(gallery / "a.png"), *argv])
    assert code == 0 and "attention_map" not in output.read_text(encoding="utf-8").splitlines()[0]  # cards only
    code, stdout, _ = run_main([str(gallery / "a.png"), "--no_progress"])
    assert attention.asked[-1] is False and "attention_map" not in json.loads(stdout)


def test_cards_never_replace_a_file_they_did_not_write(pipe, gallery, tmp_path, monkeypatch):
    """`sevlm-predict DIR --cards DIR` overwrote the user's pictures with cards (`<name>.png`). Now every card name
    is checked before the model is loaded: a file the command did not write is never replaced, and a card of an
    earlier run only with --overwrite."""
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    for name in ("a.png", "d.JPG"):
        (pictures / name).write_bytes((gallery / name).read_bytes())
    before = (pictures / "a.png").read_bytes()
    monkeypatch.setattr(prediction, "load_pipeline", lambda *args, **kwargs: pytest.fail("loaded the model"))
    for extra in ([], ["--overwrite"]):
        code, stdout, stderr = run_main([str(pictures), "--cards", str(pictures), "--no_progress", *extra])
        assert code == 1 and stdout == "" and "a.png, which this card folder did not write" in stderr
        assert (pictures / "a.png").read_bytes() == before and not (pictures / "d.png").exists()
    monkeypatch.setattr(prediction, "load_pipeline", lambda *args, **kwargs: pipe)
    cards = tmp_path / "cards"
    cards.mkdir()
    (cards / "notes.txt").write_text("mine")
    assert run_main([str(pictures), "--cards", str(cards), "--no_progress"])[0] == 0
    first = (cards / "a.png").read_bytes()
    code, _, stderr = run_main([str(pictures), "--cards", str(cards), "--no_progress"])
    assert code == 1 and "earlier card folder" in stderr and "--overwrite" in stderr
    assert run_main([str(pictures), "--cards", str(cards), "--no_progress", "--overwrite"])[0] == 0
    assert (cards / "notes.txt").read_text() == "mine" and (cards / "a.png").read_bytes()[:8] == first[:8]


def test_unusable_output_places_are_errors_before_any_prediction(pipe, gallery, tmp_path, monkeypatch):
    """--output or --cards pointing at a folder, through a file or at an unwritable place failed only after every
    image was predicted."""
    monkeypatch.setattr(prediction, "load_pipeline", lambda *args, **kwargs: pytest.fail("loaded the model"))
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    locked = tmp_path / "locked"
    locked.mkdir()
    os.chmod(locked, 0o500)
    cases = {
        ("--output", str(tmp_path / "folder.jsonl")): "is a folder",
        ("--output", str(blocker / "out.jsonl")): "is a file, not a folder",
        ("--cards", str(blocker)): "is a file, not a folder",
    }
    (tmp_path / "folder.jsonl").mkdir()
    if os.geteuid() != 0:  # root writes anywhere
        cases[("--output", str(locked / "out.jsonl"))] = "cannot write"
    for flags, message in cases.items():
        code, stdout, stderr = run_main([str(gallery / "a.png"), *flags, "--no_progress"])
        assert code == 1 and message in stderr, (flags, stderr)


def test_csv_cells_are_never_spreadsheet_formulas(pipe, tmp_path, monkeypatch):
    """File names starting with =, +, -, @ were written raw into CSV, where a spreadsheet runs them as formulas."""
    monkeypatch.setattr(prediction, "load_pipeline", lambda *args, **kwargs: pipe)
    folder = tmp_path / "in"
    folder.mkdir()
    image = random_images(1)[0]
    for name in ("=HYPERLINK(x).png", "+1.png", "@sum.png", "-2.png"):
        image.save(folder / name)
    output = tmp_path / "out.csv"
    monkeypatch.chdir(folder)  # relative names: the cells start with the file name
    assert run_main([".", "--output", str(output), "--no_progress"])[0] == 0
    with open(output, encoding="utf-8", newline="") as handle:
        files = [row["file"] for row in csv.DictReader(handle)]
    assert sorted(files) == ["'+1.png", "'-2.png", "'=HYPERLINK(x).png", "'@sum.png"]


def test_attention_maps_end_to_end(pipe, gallery, tmp_path, monkeypatch):
    """The real pipeline's `return_attention_map=True`: a map over the 4x4 patch grid of the tiny model, in the
    JSON Lines row and drawn over the painting on the card."""
    monkeypatch.setattr(prediction, "load_pipeline", lambda *args, **kwargs: pipe)
    code, stdout, _ = run_main([str(gallery / "a.png"), "--cards", str(tmp_path / "with"), "--attention_maps", "--no_progress"])
    assert code == 0
    grid = np.array(json.loads(stdout)["attention_map"])
    assert grid.shape == (4, 4) and grid.min() >= 0 and grid.max() == pytest.approx(1.0)
    code, stdout, _ = run_main([str(gallery / "a.png"), "--cards", str(tmp_path / "without"), "--no_progress"])
    assert code == 0 and "attention_map" not in json.loads(stdout)
    with Image.open(tmp_path / "with" / "a.png") as with_map, Image.open(tmp_path / "without" / "a.png") as without_map:
        left = (slice(None), slice(0, CARD_SIZE[0] // 2))
        difference = np.abs(np.asarray(with_map.convert("RGB"), dtype=int) - np.asarray(without_map.convert("RGB"), dtype=int))[left]
        assert (difference.max(-1) > 30).mean() > 0.1  # the heat map covers much of the painting
        right = (slice(None), slice(CARD_SIZE[0] // 2, None))
        assert np.array_equal(np.asarray(with_map.convert("RGB"))[right], np.asarray(without_map.convert("RGB"))[right])


def test_a_folder_without_processor_files_says_what_is_missing(trained_tiny, gallery, tmp_path, capsys):
    """Every tool that loads a model folder names the missing processor/tokenizer files and how to add them."""
    from sevlm.loading import load_model_and_processor

    model, processor, _ = trained_tiny
    folder = tmp_path / "no-processor"
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json", "processor_config.json"):
        (folder / name).unlink(missing_ok=True)
    assert predict_sevlm.main([str(gallery), "--model_name_or_path", str(folder), "--no_progress"]) == 1
    message = capsys.readouterr().err
    assert "missing" in message and "processor.save_pretrained" in message and "sentencepiece" not in message
    with pytest.raises(FileNotFoundError, match=r"missing .*processor.save_pretrained"):
        load_model_and_processor(folder)  # the one loader of every tool (evaluation, index, app)


def test_compile_flag_asks_the_pipeline_for_compiled_decoding(pipe, gallery, monkeypatch):
    asked = []

    class RecordingPipe:
        emotions = pipe.emotions

        def __call__(self, images, **kwargs):
            asked.append(kwargs.get("compile"))
            return pipe(images, **{key: value for key, value in kwargs.items() if key != "compile"})

    monkeypatch.setattr(prediction, "load_pipeline", lambda *args, **kwargs: RecordingPipe())
    assert run_main([str(gallery / "a.png"), "--no_progress", "--compile"])[0] == 0
    assert run_main([str(gallery / "a.png"), "--no_progress"])[0] == 0
    assert asked == [True, None]


def test_cards_of_an_earlier_run_in_the_folder_are_skipped_and_said(pipe, gallery, tmp_path, monkeypatch):
    import shutil

    monkeypatch.setattr(prediction, "load_pipeline", lambda *args, **kwargs: pipe)
    folder = tmp_path / "paintings"
    shutil.copytree(gallery, folder)
    code, _, stderr = run_main([str(folder), "--cards", str(folder / "cards"), "--no_progress"])
    assert code == 0 and len(list((folder / "cards").glob("*.png"))) == 4
    code, _, stderr = run_main([str(folder), "--no_progress"])
    assert code == 0 and "Predicted 4 of 5 images" in stderr  # the cards are not pictures to predict
    assert "SEVLM output(s) in the folders skipped, not images to predict" in stderr and "cards" in stderr
