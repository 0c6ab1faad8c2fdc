"""index_sevlm.py (sevlm-index): arguments, files and corpus splits, adding, another model, data-parallel builds."""

import io
import os
import shutil
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout

import datasets
import numpy as np
import pytest
from helpers import build_tiny, random_images

from pipeline_sevlm import predict_batch
from sevlm.cli import index as index_sevlm
from sevlm.hub import add_pipeline_to_folder
from sevlm.index.store import CONFIG_NAME, PENDING_DIR, EmotionIndex


def save_model(model, processor, folder):
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    add_pipeline_to_folder(folder)
    return folder


@pytest.fixture(scope="module")
def model_folder(trained_tiny, tmp_path_factory):
    model, processor, _ = trained_tiny
    return save_model(model, processor, tmp_path_factory.mktemp("model") / "tiny")


@pytest.fixture(scope="module")
def paintings(trained_tiny, tmp_path_factory):
    _, _, images = trained_tiny
    root = tmp_path_factory.mktemp("paintings")
    (root / "nested").mkdir()
    for number, image in enumerate(images + random_images(3, seed=7)):
        image.save(root / ("nested" if number % 2 else ".") / f"painting-{number}.png")
    (root / "broken.jpg").write_bytes(b"not a JPEG")
    return root


def run_main(argv):
    stdout, stderr = io.StringIO(), io.StringIO()
    with redirect_stdout(stdout), redirect_stderr(stderr):
        code = index_sevlm.main(argv)
    return code, stdout.getvalue(), stderr.getvalue()


def test_help_explains_every_flag():
    parser = index_sevlm.build_parser()
    for action in parser._actions:
        assert action.help and len(action.help) > 15, action.dest


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--output_dir", "x"], "not both"),
        (["a.png", "--dataset_path", "d", "--output_dir", "x"], "not both"),
        (["a.png", "--output_dir", "x", "--batch_size", "0"], "--batch_size must be at least 1"),
        (["a.png", "--output_dir", "x", "--thumbnail_size", "-1"], "--thumbnail_size must be 0"),
        (["a.png", "--output_dir", "x", "--num_beams", "0"], "--num_beams must be at least 1"),
        (["a.png"], "--output_dir"),
    ],
)
def test_argument_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        index_sevlm.parse_args(argv)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_index_files_then_add_new_ones(model_folder, paintings, trained_tiny, tmp_path):
    model, processor, images = trained_tiny
    output = tmp_path / "index"
    argv = ["--model", str(model_folder), "--output_dir", str(output), "--device", "cpu", "--no_progress", "--batch_size", "3"]
    code, stdout, stderr = run_main([str(paintings / "*.png"), str(paintings / "nested"), str(paintings / "broken.jpg"), "missing/"] + argv)
    assert code == 0 and stdout == ""
    assert f"skipped {paintings / 'broken.jpg'}: cannot be read" in stderr and "skipped missing/: no such file or folder" in stderr
    assert "Indexed 7 new image(s) (0 already in the index, 2 skipped)" in stderr
    index = EmotionIndex.load(output)
    assert len(index) == 7 and index.config["model"] == str(model_folder.resolve())
    private = [path.relative_to(output) for path in output.rglob("*") if path.is_file() and not path.stat().st_mode & 0o004]
    assert private == []  # a web server (the app, a Space) reads them: the safetensors VAD table too
    expected = predict_batch(model, processor, [str(paintings / "painting-0.png")])[0]
    row = index.dataset[index.row_of(str(paintings / "painting-0.png"))]
    assert row["explanation"] == expected["explanation"] and row["emotion"] == expected["emotion"]

    images[0].save(paintings / "nested" / "new.png")
    try:
        code, _, stderr = run_main([str(paintings)] + argv)
    finally:
        os.remove(paintings / "nested" / "new.png")
    assert code == 0 and "Indexed 1 new image(s) (7 already in the index, 1 skipped)" in stderr
    assert len(EmotionIndex.load(output)) == 8


def test_nothing_to_index_leaves_no_folder(model_folder, tmp_path):
    (tmp_path / "empty").mkdir()
    code, _, stderr = run_main([str(tmp_path / "empty"), "--model", str(model_folder), "--output_dir", str(tmp_path / "index"), "--device", "cpu"])
    assert code == 1 and "folder holds no image files" in stderr and "No images to index" in stderr
    assert not (tmp_path / "index").exists()


def test_index_a_corpus_split(model_folder, trained_tiny, tmp_path):
    _, _, images = trained_tiny
    features = datasets.Features({"painting_id": datasets.Value("string"), "image": datasets.Image(), "emotions": datasets.List(datasets.Value("string"))})
    split = datasets.Dataset.from_dict({"painting_id": ["s/a", "s/b"], "image": images[:2], "emotions": [["awe"], ["fear"]]}, features=features)
    datasets.DatasetDict({"test": split, "train": split}).save_to_disk(str(tmp_path / "corpus"))
    argv = ["--dataset_path", str(tmp_path / "corpus"), "--split", "test", "--model", str(model_folder), "--output_dir", str(tmp_path / "index"), "--device", "cpu", "--no_progress"]
    code, _, stderr = run_main(argv)
    assert code == 0 and "Indexed 2 new image(s)" in stderr
    assert EmotionIndex.load(tmp_path / "index").dataset["id"] == ["s/a", "s/b"]
    code, _, stderr = run_main(["--dataset_path", str(tmp_path / "corpus"), "--split", "validation", "--model", str(model_folder), "--output_dir", str(tmp_path / "other"), "--device", "cpu"])
    assert code == 1 and "--split 'validation'" in stderr and "['test', 'train']" in stderr


def test_another_model_is_refused_without_overwrite(model_folder, paintings, tmp_path):
    output = tmp_path / "index"
    common = ["--output_dir", str(output), "--device", "cpu", "--no_progress"]
    assert run_main([str(paintings / "painting-0.png"), "--model", str(model_folder)] + common)[0] == 0
    other_model, other_processor = build_tiny(emotions=["joy", "grief", "calm"])
    other = save_model(other_model, other_processor, tmp_path / "other-model")
    code, _, stderr = run_main([str(paintings / "painting-0.png"), "--model", str(other)] + common)
    assert code == 1 and "other emotions" in stderr and "--overwrite" in stderr
    assert EmotionIndex.load(output).emotions == list(EmotionIndex.load(output).config["emotions"])
    code, _, stderr = run_main([str(paintings / "painting-0.png"), "--model", str(other), "--overwrite"] + common)
    assert code == 0 and EmotionIndex.load(output).emotions == ["joy", "grief", "calm"]
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    code, _, stderr = run_main([str(paintings / "painting-0.png"), "--model", str(other), "--output_dir", str(tmp_path / "mine"), "--overwrite", "--device", "cpu"])
    assert code == 1 and "holds no emotion index" in stderr and (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


@pytest.mark.slow
def test_torchrun_two_processes_give_the_one_process_index(model_folder, paintings, tmp_path):
    """`torchrun --nproc_per_node 2` on CPU: each process predicts every other batch, the main one merges; the
    index equals the one-process index row for row."""
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable)) or shutil.which("torchrun")
    assert torchrun, "torchrun comes with torch"
    single = tmp_path / "single"
    assert run_main([str(paintings), "--model", str(model_folder), "--output_dir", str(single), "--device", "cpu", "--no_progress", "--batch_size", "2"])[0] == 0
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf_home"), OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    command = [
        torchrun, "--standalone", "--nproc_per_node", "2", "-m", "sevlm.cli.index", str(paintings),
        "--model", str(model_folder), "--output_dir", str(tmp_path / "parallel"), "--batch_size", "2", "--device", "cpu",
    ]  # fmt: skip
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr.count("Indexed 7 new image(s)") == 1  # the summary comes from the main process only
    parallel, expected = EmotionIndex.load(tmp_path / "parallel"), EmotionIndex.load(single)
    assert parallel.dataset["id"] == expected.dataset["id"]
    assert parallel.dataset["explanation"] == expected.dataset["explanation"]
    assert np.asarray(parallel.dataset["scores"]) == pytest.approx(np.asarray(expected.dataset["scores"]), abs=1e-6)
    assert np.asarray(parallel.dataset["image_embeds"]) == pytest.approx(np.asarray(expected.dataset["image_embeds"]), abs=1e-6)
    assert (tmp_path / "parallel" / CONFIG_NAME).is_file() and not (tmp_path / "parallel" / PENDING_DIR).exists()


def test_summary_names_changed_files_and_files_that_are_not_images(model_folder, trained_tiny, tmp_path):
    model, processor, images = trained_tiny
    folder = tmp_path / "paintings"
    folder.mkdir()
    images[0].save(folder / "a.png")
    images[1].save(folder / "b.png")
    (folder / "notes.txt").write_text("about the paintings")
    (folder / "logo.svg").write_text("<svg/>")
    argv = [str(folder), "--model", str(model_folder), "--output_dir", str(tmp_path / "index"), "--device", "cpu", "--no_progress"]
    code, _, stderr = run_main(argv)
    assert code == 0 and "Indexed 2 new image(s) (0 already in the index, 2 skipped)" in stderr
    assert f"2 skipped: not a supported image ({folder / 'logo.svg'}, {folder / 'notes.txt'})" in stderr
    images[2].save(folder / "a.png")
    later = os.stat(folder / "b.png").st_mtime + 60
    os.utime(folder / "a.png", (later, later))
    code, _, stderr = run_main(argv)
    assert code == 0 and "1 indexed file(s) changed since they were indexed: predicted again." in stderr
    expected = predict_batch(model, processor, [images[2]])[0]
    index = EmotionIndex.load(tmp_path / "index")
    assert len(index) == 2 and index.dataset[index.row_of(str(folder / "a.png"))]["explanation"] == expected["explanation"]


def test_an_interrupted_overwrite_is_not_finished_by_a_plain_add(model_folder, paintings, tmp_path, monkeypatch):
    """An interrupted --overwrite left a "replace" flag that turned a later plain addition into a wipe (243 items
    -> 1): the addition is refused, saying what differs; the rebuild resumes when asked again."""
    from sevlm.index import build

    output = tmp_path / "index"
    common = ["--model", str(model_folder), "--output_dir", str(output), "--device", "cpu", "--no_progress", "--batch_size", "2"]
    assert run_main([str(paintings)] + common)[0] == 0
    real, calls = build.predict_rows, []

    def interrupted(*args):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(build, "predict_rows", interrupted)
    code, _, stderr = run_main([str(paintings)] + common + ["--overwrite"])
    assert code == 130 and "run the same command again" in stderr
    monkeypatch.undo()
    code, _, stderr = run_main([str(paintings / "painting-0.png")] + common)
    assert code == 1 and "rebuild (--overwrite)" in stderr and "--discard_pending" in stderr
    assert len(EmotionIndex.load(output)) == 7  # not 1
    code, _, stderr = run_main([str(paintings)] + common + ["--overwrite"])
    assert code == 0 and "Resuming the unfinished build" in stderr and len(EmotionIndex.load(output)) == 7


def test_a_second_writer_is_refused(model_folder, paintings, tmp_path):
    """Two builds into one folder at once kept 147 of 360 items, and both "succeeded"."""
    import fcntl
    import json

    output = tmp_path / "index"
    output.mkdir()
    with open(output / ".lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        held.write(json.dumps({"pid": 4242, "host": "elsewhere", "since": "2026-01-01T00:00:00"}))
        held.flush()
        code, _, stderr = run_main([str(paintings / "painting-0.png"), "--model", str(model_folder), "--output_dir", str(output), "--device", "cpu"])
    assert code == 1 and "is being written by another build (process 4242 on elsewhere" in stderr


def test_outputs_written_among_the_works_are_not_indexed(model_folder, trained_tiny, tmp_path):
    """A gallery written into the collection folder is warned about, and the next build of that folder skips it (and
    says so) instead of indexing its contact sheet as a work."""
    from sevlm.cli import search as search_command

    _, _, images = trained_tiny
    folder = tmp_path / "paintings"
    folder.mkdir()
    images[0].save(folder / "a.png")
    images[1].save(folder / "b.png")
    argv = [str(folder), "--model", str(model_folder), "--output_dir", str(tmp_path / "index"), "--device", "cpu", "--no_progress"]
    assert run_main(argv)[0] == 0
    stderr = io.StringIO()
    with redirect_stdout(io.StringIO()), redirect_stderr(stderr):
        code = search_command.main(["--index", str(tmp_path / "index"), "--emotions", "awe", "--gallery", str(folder)])
    assert code == 0 and (folder / "contact_sheet.png").is_file()
    assert f"warning: --gallery {folder} holds 2 work(s) of the index" in stderr.getvalue()
    code, _, stderr = run_main(argv)
    assert code == 0 and "Indexed 0 new image(s) (2 already in the index, 0 skipped)" in stderr
    assert f"1 SEVLM output(s) in the folders skipped, not works (galleries, reports, Spaces, indexes, models): {folder / 'contact_sheet.png'}." in stderr
    assert len(EmotionIndex.load(tmp_path / "index")) == 2


def test_metadata_for_a_folder_without_an_index_leaves_no_trace(tmp_path, capsys):
    """--metadata alone for a folder that holds no index makes nothing and locks nothing; --overwrite with it is
    refused (nothing would be rebuilt)."""
    works = tmp_path / "works.csv"
    works.write_text("file,artist\na.png,X\n", encoding="utf-8")
    mine = tmp_path / "mydir"
    mine.mkdir()
    (mine / "notes.txt").write_text("important")
    for folder in (tmp_path / "nosuch", mine):
        code, _, stderr = run_main(["--output_dir", str(folder), "--metadata", str(works)])
        assert code == 1 and "holds no emotion index to attach --metadata to" in stderr and "Traceback" not in stderr
    assert not (tmp_path / "nosuch").exists() and sorted(os.listdir(mine)) == ["notes.txt"]
    with pytest.raises(SystemExit) as exit_info:
        index_sevlm.parse_args(["--output_dir", str(mine), "--metadata", str(works), "--overwrite"])
    assert exit_info.value.code == 2 and "--metadata alone rebuilds nothing" in capsys.readouterr().err
