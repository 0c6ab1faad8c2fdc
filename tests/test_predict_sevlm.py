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
from PIL import Image

import predict_sevlm
from conftest import REPO_ROOT
from pipeline_sevlm import SevlmArtEmotionPipeline, add_pipeline_to_folder
from predict_sevlm import CARD_SIZE, build_parser, find_images, main, make_card, parse_args

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
    monkeypatch.setattr(predict_sevlm, "load_pipeline", lambda *args, **kwargs: pipe)
    output = tmp_path / "out" / "predictions.jsonl"
    code, _, stderr = run_main([str(gallery), "--output", str(output), "--batch_size", "2", "--no_progress"])
    assert code == 0
    rows = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert [os.path.relpath(row["file"], gallery) for row in rows] == [
        "a.png", "d.JPG", os.path.join("nested", "deeper", "a.png"), os.path.join("nested", NON_ASCII),
    ]  # fmt: skip
    assert "broken.jpg" in stderr and "cannot be read" in stderr and "Predicted 4 of 5 images" in stderr
    expected = pipe([row["file"] for row in rows])  # d.JPG is lossy: compare with the files, not the arrays
    for row, want in zip(rows, expected):
        assert (row["emotion"], row["explanation"]) == (want["emotion"], want["explanation"])
        assert row["score"] == pytest.approx(want["score"], abs=1e-5) and list(row["scores"]) == list(want["scores"])
    assert NON_ASCII in output.read_text(encoding="utf-8")  # written as UTF-8, not escaped


def test_csv_with_emotion_and_generation_flags(pipe, gallery, tmp_path, monkeypatch):
    monkeypatch.setattr(predict_sevlm, "load_pipeline", lambda *args, **kwargs: pipe)
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
    monkeypatch.setattr(predict_sevlm, "load_pipeline", lambda *args, **kwargs: pipe)
    code, stdout, _ = run_main([str(gallery / "a.png"), "--no_progress"])
    assert code == 0 and json.loads(stdout)["emotion"] == "sadness"
    code, stdout, stderr = run_main([str(gallery / "broken.jpg"), "--no_progress"])
    assert code == 1 and stdout == "" and "Predicted 0 of 1" in stderr
    code, _, stderr = run_main([str(gallery / "nothing-here")])
    assert code == 1 and "No images to predict" in stderr
    code, _, stderr = run_main([str(gallery / "a.png"), "--emotion", "joy"])
    assert code == 1 and "not one of the model's emotions" in stderr
    with pytest.raises(SystemExit), redirect_stderr(io.StringIO()):
        parse_args(["x.png", "--output", "out.txt"])


def test_help_explains_every_flag(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    flags = ["--model_name_or_path", "--output", "--cards", "--batch_size", "--device", "--emotion", "--extensions",
             "--max_new_tokens", "--num_beams", "--do_sample", "--temperature", "--top_p", "--top_k", "--seed", "--no_progress"]  # fmt: skip
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


def test_cli_in_fresh_process_with_cards(trained_tiny, gallery, tmp_path):
    """The real command line: model folder loaded with its own pipeline, outside the repo, offline."""
    model, processor, _ = trained_tiny
    folder = tmp_path / "model"
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    add_pipeline_to_folder(folder)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf_home"), OMP_NUM_THREADS="1", PYTHONIOENCODING="utf-8")
    command = [
        sys.executable, str(REPO_ROOT / "predict_sevlm.py"), str(gallery), "--model", str(folder),
        "--output", "out.jsonl", "--cards", "cards", "--batch_size", "3", "--device", "cpu",
    ]  # fmt: skip
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "broken.jpg" in result.stderr and "Predicted 4 of 5 images" in result.stderr and "Predicting" in result.stderr
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [row["emotion"] for row in rows] == ["sadness", "anger", "something else", "awe"]
    cards = sorted(path.name for path in (tmp_path / "cards").iterdir())
    assert cards == sorted(["a.png", "a-2.png", "d.png", NON_ASCII])
    assert sorted(os.path.basename(row["card"]) for row in rows) == cards
    with Image.open(tmp_path / "cards" / NON_ASCII) as card:
        assert card.size == CARD_SIZE
