"""sevlm.io: the one file-writing layer. Outputs get normal permissions, replace only what their kind of output wrote,
and never a user's file."""

import json
import os
import stat

import pytest

from sevlm.io import (
    OUTPUT_RECORD,
    OutputFiles,
    check_new_file,
    check_output_folder,
    read_record,
    record_entries,
    replace_file,
    staged_output,
    write_json_atomic,
)


@pytest.fixture()
def umask_022():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_atomic_writes_have_the_modes_of_plain_open(tmp_path, umask_022):
    """mkstemp / mkdtemp make owner-only files and folders; outputs must be readable as `open()` / `mkdir` would
    leave them (0644 / 0755 under umask 022), and a replaced file keeps its own mode."""
    path = write_json_atomic(tmp_path / "metrics.json", {"a": 1})
    assert mode(path) == 0o644
    os.chmod(path, 0o600)
    write_json_atomic(path, {"a": 2})
    assert mode(path) == 0o600 and json.loads(path.read_text()) == {"a": 2}
    with staged_output(tmp_path / "run", "evaluation") as staging:
        (staging / "report.md").write_text("x")
    assert mode(tmp_path / "run") == 0o755 and mode(tmp_path / "run" / OUTPUT_RECORD) == 0o644


def test_staged_safetensors_files_are_readable_as_other_outputs(tmp_path, umask_022):
    """safetensors writes 0600 files: a classifier, an index or a model staged through sevlm.io gets 0644."""
    import torch
    from safetensors.torch import save_file

    with staged_output(tmp_path / "classifier", "emotion classifier") as staging:
        save_file({"weight": torch.zeros(2)}, str(staging / "model.safetensors"))
    assert mode(tmp_path / "classifier" / "model.safetensors") == 0o644


def test_a_failed_write_leaves_the_old_file(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError), replace_file(path) as stream:
        stream.write("new")
        raise RuntimeError("stop")
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_check_new_file(tmp_path):
    existing = tmp_path / "predictions.jsonl"
    existing.write_text("mine")
    with pytest.raises(FileExistsError, match="--overwrite"):
        check_new_file(existing)
    check_new_file(existing, overwrite=True)
    with pytest.raises(IsADirectoryError, match="is a folder"):
        check_new_file(tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(NotADirectoryError, match="is a file, not a folder"):
        check_new_file(blocker / "out.csv")
    # A file that belongs to a tool's folder is never a target, not even with overwrite.
    index = tmp_path / "index"
    index.mkdir()
    (index / "index_config.json").write_text("{}")
    record_entries(index, ["index_config.json"], "emotion index")
    with pytest.raises(FileExistsError, match="belongs to the emotion index"):
        check_new_file(index / "index_config.json", overwrite=True)


def test_a_place_where_nothing_can_be_written_is_refused_before_any_work(tmp_path, monkeypatch):
    """Permission bits say nothing for root or on a read-only mount (`os.access` answers yes there), so the check
    writes a probe file: a read-only place is an error naming the flag, before a model is loaded or an image read."""
    import errno
    import tempfile

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    with pytest.raises(PermissionError, match=r"--output .*out\.jsonl: cannot write in .*Read-only file system"):
        check_new_file(tmp_path / "out.jsonl")
    with pytest.raises(PermissionError, match=r"--output_dir .*new/run: cannot write in"):
        check_output_folder(tmp_path / "new" / "run", "evaluation")
    monkeypatch.undo()
    check_output_folder(tmp_path / "new" / "run", "evaluation")
    assert sorted(path.name for path in tmp_path.iterdir()) == []  # the probe leaves nothing behind


def test_a_shared_folder_keeps_everything_that_is_not_ours(tmp_path):
    """The `--overwrite_output_dir` example: a folder with the user's src/ and thesis.tex and an earlier evaluation.
    Only the evaluation's own files are replaced; stale outputs of the earlier run go; the user's files stay."""
    target = tmp_path / "work"
    (target / "src").mkdir(parents=True)
    (target / "src" / "main.py").write_text("print()")
    (target / "thesis.tex").write_text("\\documentclass")
    with staged_output(target, "evaluation", ["metrics.json", "report.md", "slices.json"]) as staging:
        for name in ("metrics.json", "report.md", "slices.json"):
            (staging / name).write_text("first")
    assert read_record(target) == {"metrics.json": "evaluation", "report.md": "evaluation", "slices.json": "evaluation"}
    with pytest.raises(FileExistsError, match="holds an earlier evaluation .*--overwrite"):
        staged_output(target, "evaluation", ["metrics.json"]).__enter__()
    with staged_output(target, "evaluation", ["metrics.json", "report.md"], overwrite=True) as staging:
        for name in ("metrics.json", "report.md"):
            (staging / name).write_text("second")
    assert (target / "metrics.json").read_text() == "second" and not (target / "slices.json").exists()
    assert (target / "thesis.tex").read_text() == "\\documentclass" and (target / "src" / "main.py").is_file()
    assert set(read_record(target)) == {"metrics.json", "report.md"}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging or aside folders left


def test_a_users_file_with_an_output_name_is_never_replaced(tmp_path):
    target = tmp_path / "work"
    target.mkdir()
    (target / "report.md").write_text("my own report")
    for overwrite in (False, True):
        with pytest.raises(FileExistsError, match=r"report\.md, which this evaluation did not write"):
            with staged_output(target, "evaluation", ["report.md"], overwrite=overwrite) as staging:
                (staging / "report.md").write_text("x")
    assert (target / "report.md").read_text() == "my own report"


def test_another_kind_of_output_is_not_ours(tmp_path):
    """A gallery may share a folder with an evaluation; neither replaces the other's files."""
    target = tmp_path / "shared"
    with staged_output(target, "evaluation", ["report.md"]) as staging:
        (staging / "report.md").write_text("eval")
    with pytest.raises(FileExistsError, match="did not write"):
        with staged_output(target, "search gallery", ["report.md"], overwrite=True) as staging:
            (staging / "report.md").write_text("gallery")
    with staged_output(target, "search gallery", ["index.html"]) as staging:
        (staging / "index.html").write_text("<html>")
    assert read_record(target) == {"report.md": "evaluation", "index.html": "search gallery"}


def test_a_failed_block_leaves_the_target_untouched(tmp_path):
    target = tmp_path / "out"
    with staged_output(target, "evaluation") as staging:
        (staging / "metrics.json").write_text("old")
    with pytest.raises(RuntimeError), staged_output(target, "evaluation", overwrite=True) as staging:
        (staging / "metrics.json").write_text("new")
        raise RuntimeError("generation failed")
    assert (target / "metrics.json").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_output_files_one_by_one(tmp_path):
    """Cards written beside a user's pictures: a name that is the user's file is refused before any work; our own
    files of an earlier run are replaced only with overwrite."""
    folder = tmp_path / "pictures"
    folder.mkdir()
    (folder / "painting.png").write_bytes(b"user's picture")
    cards = OutputFiles(folder, "card folder")
    with pytest.raises(FileExistsError, match=r"painting\.png, which this card folder did not write"):
        cards.check(["painting.png"])
    cards.check(["other.png"])
    with cards.open("other.png", "wb") as stream:
        stream.write(b"card")
    cards.close()
    assert read_record(folder) == {"other.png": "card folder"}
    with pytest.raises(FileExistsError, match="--overwrite"):
        OutputFiles(folder, "card folder").check(["other.png"])
    OutputFiles(folder, "card folder", overwrite=True).check(["other.png"])
    assert (folder / "painting.png").read_bytes() == b"user's picture"


def test_args_files_name_the_line_of_what_cannot_be_read(tmp_path):
    from sevlm.cli.arguments import read_args_file

    with_bom = tmp_path / "bom.args"
    with_bom.write_bytes("\ufeff--dataset_path data/x\n".encode("utf-8"))
    assert read_args_file(with_bom) == ["--dataset_path", "data/x"]  # a byte-order mark is not part of the first flag

    latin1 = tmp_path / "latin1.args"
    latin1.write_bytes(b"--dataset_path x\n--prompt_text caf\xe9\n")
    with pytest.raises(ValueError, match=r"latin1.args, line 2: not UTF-8 text \(byte 0xe9\)"):
        read_args_file(latin1)

    unclosed = tmp_path / "unclosed.args"
    unclosed.write_text('--dataset_path x\n# fine\n--prompt_text " the feeling is\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"unclosed.args, line 3: No closing quotation"):
        read_args_file(unclosed)

    continued = tmp_path / "continued.args"
    continued.write_text("--dataset_path \\\n  data/y  # where\n", encoding="utf-8")
    assert read_args_file(continued) == ["--dataset_path", "data/y"]
