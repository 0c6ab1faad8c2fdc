"""search_sevlm.py (sevlm-search): queries, filters, JSON Lines / CSV output, galleries, errors."""

import csv
import io
import json
import os
from contextlib import redirect_stderr, redirect_stdout

import pytest
from helpers import build_tiny
from PIL import Image
from test_emotion_index_sevlm import commit_rows, synthetic_rows

from sevlm.cli import search as search_sevlm
from sevlm.hub import add_pipeline_to_folder
from sevlm.index.gallery import CONTACT_SHEET
from sevlm.index.store import EmotionIndex


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
        (["--index", "i", "--id", "a", "--output", "hits.txt"], ".jsonl (JSON Lines, one hit per line) or .csv"),
        (["--index", "i", "--id", "a", "--output", "hits.json"], "hits.json: use a file name ending in .jsonl (JSON Lines, one hit per line) or .csv"),
        (["--index", "i", "--id", "a", "--visual_weight", "1.5"], "--visual_weight must be between 0 and 1"),
        (["--index", "i", "--id", "a", "--model", "m"], "only apply to --image"),
        (["--index", "i", "--id", "a", "--trust_index_model"], "only apply to --image"),
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
        assert sheet.size == (3 * 240, 350)


@pytest.mark.parametrize(
    "query, message",
    [
        (["--id", "nothing"], "No item with id 'nothing'"),
        (["--emotions", "joy=1"], "Unknown emotion 'joy'"),
        (["--text", "zzzz qqqq"], "No word of 'zzzz qqqq' could be used"),
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
    code, stdout, _ = run_main(["--index", str(index.folder), "--image", str(paths[1]), "--visual_weight", "0.5", "--top_k", "2", "--device", "cpu", "--trust_index_model"])
    assert code == 0
    hits = [json.loads(line) for line in stdout.splitlines()]
    assert hits[0]["id"] == str(paths[1]) and hits[0]["score"] == pytest.approx(1.0, abs=1e-5)
    other_model, other_processor = build_tiny(emotions=["joy", "grief", "calm"])
    other_model.save_pretrained(tmp_path / "other")
    other_processor.save_pretrained(tmp_path / "other")
    code, _, stderr = run_main(["--index", str(index.folder), "--image", str(paths[1]), "--model", str(tmp_path / "other"), "--device", "cpu"])
    assert code == 1 and "emotions are" in stderr and "['joy', 'grief', 'calm']" in stderr
    (tmp_path / "broken.png").write_bytes(b"not a PNG")
    code, _, stderr = run_main(["--index", str(index.folder), "--image", str(tmp_path / "broken.png"), "--trust_index_model"])
    assert code == 1 and "broken.png" in stderr and "cannot be read" in stderr


# ------------------------------------------------------------------------------------------- nothing lost
def copy_index(index, target):
    import shutil

    shutil.copytree(index.folder, target)
    return target


def test_output_never_replaces_a_file_unasked_nor_the_index_own(synthetic, tmp_path):
    hits_file = tmp_path / "hits.csv"
    hits_file.write_text("my spreadsheet")
    argv = ["--index", str(synthetic.folder), "--emotions", "awe=1", "--top_k", "2"]
    code, _, stderr = run_main(argv + ["--output", str(hits_file)])
    assert code == 1 and "already exists" in stderr and "--overwrite" in stderr and hits_file.read_text() == "my spreadsheet"
    code, _, _ = run_main(argv + ["--output", str(hits_file), "--overwrite"])
    assert code == 0 and hits_file.read_text().startswith("rank,id,file,score")
    config = synthetic.folder / "index_config.json"
    before = config.read_bytes()
    code, _, stderr = run_main(argv + ["--output", str(synthetic.folder / "parts" / "hits.jsonl"), "--overwrite"])  # its folders
    assert code == 1 and "belongs to the emotion index" in stderr, stderr
    code, _, stderr = run_main(argv + ["--output", str(synthetic.folder / "hits.csv"), "--overwrite"])  # beside its files
    assert code == 1 and f"is inside --index {synthetic.folder}, which it is made from" in stderr, stderr
    with pytest.raises(SystemExit):  # not a hits file's name, and the index's own file
        run_main(argv + ["--output", str(config), "--overwrite"])
    assert config.read_bytes() == before and len(EmotionIndex.load(synthetic.folder)) == 200
    (tmp_path / "results.csv").mkdir()
    code, _, stderr = run_main(argv + ["--output", str(tmp_path / "results.csv")])  # a folder
    assert code == 1 and "is a folder" in stderr and "Traceback" not in stderr
    code, _, stderr = run_main(argv + ["--output", str(hits_file / "inside.csv")])  # through a file
    assert code == 1 and "is a file, not a folder" in stderr
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    unwritable = locked if not os.access(locked, os.W_OK) else "/proc/1"  # root may write anywhere but there
    code, _, stderr = run_main(argv + ["--output", os.path.join(unwritable, "hits.csv")])
    assert code == 1 and f"cannot write in {unwritable}" in stderr


def test_gallery_never_replaces_a_users_files(synthetic, tmp_path):
    folder = tmp_path / "holiday"
    folder.mkdir()
    (folder / "contact_sheet.png").write_bytes(b"my photos")
    argv = ["--index", str(synthetic.folder), "--emotions", "awe=1", "--top_k", "2"]
    code, stdout, stderr = run_main(argv + ["--gallery", str(folder), "--overwrite"])
    assert code == 1 and stdout == "" and "contact_sheet.png" in stderr and "did not write" in stderr
    assert (folder / "contact_sheet.png").read_bytes() == b"my photos" and not (folder / "index.html").exists()
    code, _, stderr = run_main(argv + ["--gallery", str(folder / "contact_sheet.png")])
    assert code == 1 and "is a file" in stderr
    code, _, _ = run_main(argv + ["--gallery", str(tmp_path / "g")])
    assert code == 0
    code, _, stderr = run_main(argv + ["--gallery", str(tmp_path / "g")])
    assert code == 1 and "--overwrite" in stderr
    assert run_main(argv + ["--gallery", str(tmp_path / "g"), "--overwrite"])[0] == 0


def test_outputs_never_go_into_a_model_or_index_folder(synthetic, image_index, tmp_path):
    """A model's files are protected as an index's are (even with --overwrite), and a gallery goes neither into the
    index searched nor into a model folder."""
    index, paths = image_index
    model = paths[0].parent / "model"
    config = (model / "config.json").read_bytes()
    argv = ["--index", str(synthetic.folder), "--emotions", "awe=1", "--top_k", "2"]
    (model / "hits.csv").write_text("rank,id\n")  # a file of a model folder, whatever its name
    for target in (model / "hits.jsonl", model / "hits.csv"):
        code, stdout, stderr = run_main(argv + ["--output", str(target), "--overwrite"])
        assert code == 1 and stdout == "" and f"--output {target} is inside {model}, which is a model folder" in stderr, stderr
    with pytest.raises(SystemExit):
        run_main(argv + ["--output", str(model / "config.json"), "--overwrite"])
    assert (model / "config.json").read_bytes() == config and not (model / "hits.jsonl").exists()
    assert (model / "hits.csv").read_text() == "rank,id\n"
    (model / "hits.csv").unlink()
    for folder, message in ((synthetic.folder, f"--gallery {synthetic.folder} is --index {synthetic.folder}"), (model, f"--gallery {model} is a model folder")):
        code, _, stderr = run_main(argv + ["--gallery", str(folder)])
        assert code == 1 and message in stderr and not (folder / "index.html").exists(), stderr


def test_damaged_index_files_are_named(synthetic, tmp_path):
    import glob

    argv = ["--emotions", "awe=1"]
    faiss_broken = copy_index(synthetic, tmp_path / "faiss")
    target = sorted(glob.glob(str(faiss_broken / "faiss" / "emotion-*.faiss")))[0]
    with open(target, "wb") as stream:
        stream.write(b"not a FAISS index")
    config_broken = copy_index(synthetic, tmp_path / "config")
    (config_broken / "index_config.json").write_text('{"format": "sevlm-emotion-index", "version": 2, "parts": [')
    config_foreign = copy_index(synthetic, tmp_path / "foreign")
    config = json.loads((config_foreign / "index_config.json").read_text())
    (config_foreign / "index_config.json").write_text(json.dumps({**config, "parts": ["../../elsewhere"]}))
    part_cut = copy_index(synthetic, tmp_path / "part")
    arrow = sorted(glob.glob(str(part_cut / "parts" / "*" / "*.arrow")))[0]
    os.truncate(arrow, os.path.getsize(arrow) // 2)
    expected = {
        faiss_broken: target,
        config_broken: str(config_broken / "index_config.json"),
        config_foreign: str(config_foreign / "index_config.json"),
        part_cut: os.path.dirname(arrow),
    }
    for folder, named in expected.items():
        code, _, stderr = run_main(["--index", str(folder)] + argv)
        assert code == 1 and named in stderr and "Rebuild the index" in stderr and "Traceback" not in stderr, stderr


def test_words_that_were_not_used_are_named(synthetic):
    code, stdout, stderr = run_main(["--index", str(synthetic.folder), "--text", "calm, glomy", "--top_k", "2"])
    assert code == 0 and len(stdout.splitlines()) == 2
    assert "Not used" in stderr and "'glomy' (nearest known: gloomy)" in stderr
    code, _, stderr = run_main(["--index", str(synthetic.folder), "--text", "glomy"])
    assert code == 1 and "'glomy' (nearest known: gloomy)" in stderr and "--emotions" in stderr


def test_huge_weights_and_names_with_commas(tmp_path):
    emotions = ["joy", "mixed, feelings", "a=b"]
    model, processor = build_tiny(emotions=emotions)
    rows = synthetic_rows(emotions, processor.tokenizer, model.vad_table.numpy(), 30, seed=2)
    index = commit_rows(tmp_path / "index", model, processor, rows)
    argv = ["--index", str(index.folder), "--top_k", "5"]
    code, huge, _ = run_main(argv + ["--emotions", "joy=1e308,a=b=1e308"])
    assert code == 0 and huge == run_main(argv + ["--emotions", "joy=1,a=b=1"])[1]
    hits = [json.loads(line) for line in huge.splitlines()]
    assert hits[0]["distances"]["emotion"] < 0.99  # a real ranking, not a query of zeros
    code, stdout, stderr = run_main(argv + ["--emotions", '"Mixed,  Feelings"=0.7,A=B=0.3', "--emotion", '"mixed, feelings",joy'])
    assert code == 0, stderr
    expected = index.search(emotions={"mixed, feelings": 0.7, "a=b": 0.3}, emotion=["mixed, feelings", "joy"], top_k=5)
    assert [json.loads(line)["id"] for line in stdout.splitlines()] == [hit["id"] for hit in expected]


# ------------------------------------------------------------------------------------------------ models
def test_image_query_runs_no_code_the_index_names_unless_asked(image_index, tmp_path):
    """The index names its model in index_config.json: a data file. --image loads that folder's code only with
    --trust_index_model; otherwise it refuses, without prompting, saying how to allow it."""
    import shutil

    index, paths = image_index
    marker = tmp_path / "code-ran"
    model = tmp_path / "model-named-by-an-index"
    shutil.copytree(index.folder.parent / "model", model)
    with open(model / "modeling_sevlm.py", "a", encoding="utf-8") as stream:
        stream.write(f"\nimport pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n")
    folder = copy_index(index, tmp_path / "index")
    config = json.loads((folder / "index_config.json").read_text())
    (folder / "index_config.json").write_text(json.dumps({**config, "model": str(model)}))
    argv = ["--index", str(folder), "--image", str(paths[1]), "--device", "cpu"]
    code, stdout, stderr = run_main(argv)
    assert code == 1 and stdout == "" and not marker.exists()
    assert "--trust_index_model" in stderr and f"--model_name_or_path {model}" in stderr
    code, stdout, _ = run_main(argv + ["--trust_index_model"])
    assert code == 0 and marker.read_text() == "ran" and json.loads(stdout.splitlines()[0])["id"] == str(paths[1])


def test_image_query_with_other_weights_warns(image_index, tmp_path):
    index, paths = image_index
    other_model, other_processor = build_tiny(seed=5)  # the same emotions, other weights
    folder = tmp_path / "model-with-other-weights"
    other_model.save_pretrained(folder)
    other_processor.save_pretrained(folder)
    code, _, stderr = run_main(["--index", str(index.folder), "--image", str(paths[1]), "--model_name_or_path", str(folder), "--device", "cpu"])
    assert code == 0 and "warning:" in stderr and "not the model this index was built with" in stderr
    code, _, stderr = run_main(["--index", str(index.folder), "--image", str(paths[1]), "--model", str(index.folder.parent / "model"), "--device", "cpu"])
    assert code == 0 and "warning" not in stderr


def test_help_of_where_names_the_empty_value(capsys):
    with pytest.raises(SystemExit):
        search_sevlm.parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "'artist=', nothing after '=': the works without an artist" in text
