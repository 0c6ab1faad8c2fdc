"""search_sevlm.py (sevlm-search): queries, filters, JSON Lines / CSV output, galleries, errors."""

import csv
import io
import json
from contextlib import redirect_stderr, redirect_stdout

import pytest
from helpers import build_tiny
from PIL import Image
from test_emotion_index_sevlm import commit_rows, synthetic_rows

from sevlm.cli import search as search_sevlm
from sevlm.hub import add_pipeline_to_folder
from sevlm.index.store import CONTACT_SHEET, EmotionIndex


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    model, processor = build_tiny()
    rows = synthetic_rows(model.config.emotions, processor.tokenizer, model.vad_table.numpy(), 200, seed=11)
    return commit_rows(tmp_path_factory.mktemp("search") / "index", model, processor, rows)


@pytest.fixture(scope="module")
def image_index(trained_tiny, tmp_path_factory):
    """An index of the tiny model's 4 paintings, built from its saved folder (image queries load it from there)."""
    model, processor, images = trained_tiny
    root = tmp_path_factory.mktemp("image-index")
    model.save_pretrained(root / "model")
    processor.save_pretrained(root / "model")
    add_pipeline_to_folder(root / "model")
    paths = []
    for number, image in enumerate(images):
        paths.append(root / f"painting-{number}.png")
        image.save(paths[-1])
    index = EmotionIndex.build(paths, root / "index", model=str(root / "model"), device="cpu", progress=False)
    return index, paths


def run_main(argv):
    stdout, stderr = io.StringIO(), io.StringIO()
    with redirect_stdout(stdout), redirect_stderr(stderr):
        code = search_sevlm.main(argv)
    return code, stdout.getvalue(), stderr.getvalue()


def test_help_explains_every_flag():
    for action in search_sevlm.build_parser()._actions:
        assert action.help and len(action.help) > 15, action.dest


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--index", "i"], "exactly one query"),
        (["--index", "i", "--id", "a", "--text", "calm"], "exactly one query"),
        (["--index", "i", "--id", "a", "--top_k", "0"], "--top_k must be at least 1"),
        (["--index", "i", "--id", "a", "--output", "hits.txt"], ".jsonl or .csv"),
        (["--index", "i", "--id", "a", "--visual_weight", "1.5"], "--visual_weight must be between 0 and 1"),
        (["--index", "i", "--id", "a", "--model", "m"], "only applies to --image"),
    ],
)
def test_argument_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        search_sevlm.parse_args(argv)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_jsonl_on_stdout_equals_the_api(synthetic):
    code, stdout, stderr = run_main(["--index", str(synthetic.folder), "--emotions", "awe=0.6,sadness=0.4", "--top_k", "4"])
    assert code == 0 and "4 hit(s) of 200 item(s)" in stderr
    hits = [json.loads(line) for line in stdout.splitlines()]
    assert hits == synthetic.search(emotions={"awe": 0.6, "sadness": 0.4}, top_k=4)
    assert set(hits[0]) >= {"id", "file", "score", "emotion", "scores", "explanation"}


def test_csv_output_with_filters_and_weights(synthetic, tmp_path):
    output = tmp_path / "out" / "hits.csv"
    argv = ["--index", str(synthetic.folder), "--id", "item-0003", "--visual_weight", "0.3", "--vad_weight", "0.2"]
    code, stdout, _ = run_main(argv + ["--emotion", "fear,sadness", "--min_score", "0.2", "--output", str(output)])
    assert code == 0 and stdout == ""
    with open(output, newline="", encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    expected = synthetic.search(id="item-0003", visual_weight=0.3, vad_weight=0.2, emotion=["fear", "sadness"], min_score=0.2)
    assert [row["id"] for row in rows] == [hit["id"] for hit in expected] and len(rows) == 10
    assert list(rows[0])[:6] == ["rank", "id", "file", "score", "emotion", "explanation"]
    assert "score_something_else" in rows[0] and {"distance_emotion", "distance_visual", "distance_vad"} <= set(rows[0])
    assert all(row["emotion"] in ("fear", "sadness") and float(row[f"score_{row['emotion']}"]) >= 0.2 for row in rows)


def test_text_query_and_gallery(synthetic, tmp_path):
    code, stdout, stderr = run_main(["--index", str(synthetic.folder), "--text", "calm, peaceful", "--top_k", "3", "--gallery", str(tmp_path / "g")])
    assert code == 0 and f"Gallery: {tmp_path / 'g' / 'index.html'}" in stderr
    hits = [json.loads(line) for line in stdout.splitlines()]
    assert hits[0]["explanation"] == "the sky is calm and peaceful"
    page = (tmp_path / "g" / "index.html").read_text(encoding="utf-8")
    assert all(f'data-id="{hit["id"]}"' in page for hit in hits) and "https://" not in page
    with Image.open(tmp_path / "g" / CONTACT_SHEET) as sheet:
        assert sheet.size == (3 * 240, 330)


@pytest.mark.parametrize(
    "query, message",
    [
        (["--id", "nothing"], "No item with id 'nothing'"),
        (["--emotions", "joy=1"], "Unknown emotion 'joy'"),
        (["--text", "zzzz qqqq"], "none of its words has a VAD value"),
        (["--emotions", "awe=1", "--visual_weight", "0.5"], "visual_weight needs a query with an image"),
        (["--emotions", "awe=1", "--emotion", "joy"], "Unknown emotion filter 'joy'"),
    ],
)
def test_query_errors_name_the_problem(synthetic, query, message):
    code, stdout, stderr = run_main(["--index", str(synthetic.folder)] + query)
    assert code == 1 and stdout == "" and message in stderr


def test_missing_index(tmp_path):
    code, _, stderr = run_main(["--index", str(tmp_path / "nothing"), "--emotions", "awe=1"])
    assert code == 1 and "is not an emotion index" in stderr


def test_image_query_with_the_index_model(image_index, tmp_path):
    index, paths = image_index
    code, stdout, _ = run_main(["--index", str(index.folder), "--image", str(paths[1]), "--visual_weight", "0.5", "--top_k", "2", "--device", "cpu"])
    assert code == 0
    hits = [json.loads(line) for line in stdout.splitlines()]
    assert hits[0]["id"] == str(paths[1]) and hits[0]["score"] == pytest.approx(1.0, abs=1e-5)
    other_model, other_processor = build_tiny(emotions=["joy", "grief", "calm"])
    other_model.save_pretrained(tmp_path / "other")
    other_processor.save_pretrained(tmp_path / "other")
    code, _, stderr = run_main(["--index", str(index.folder), "--image", str(paths[1]), "--model", str(tmp_path / "other"), "--device", "cpu"])
    assert code == 1 and "emotions are" in stderr and "['joy', 'grief', 'calm']" in stderr
    (tmp_path / "broken.png").write_bytes(b"not a PNG")
    code, _, stderr = run_main(["--index", str(index.folder), "--image", str(tmp_path / "broken.png")])
    assert code == 1 and "broken.png" in stderr and "cannot be read" in stderr
