"""sevlm.images: finding image files in folders and glob patterns, links followed once, files left out named."""

import os
import subprocess
import sys

import pytest
from helpers import REPO_ROOT


@pytest.fixture()
def looped(tmp_path):
    """A folder holding two links to itself, a link to its parent, a real subfolder reached by a link too, and files
    that are not images."""
    root = tmp_path / "art"
    (root / "room").mkdir(parents=True)
    for name in ("a.png", "room/b.png", "room/c.JPG"):
        (root / name).write_bytes(b"picture")
    (root / "notes.txt").write_text("not an image")
    (root / "room" / "logo.svg").write_text("<svg/>")
    (root / ".hidden").write_text("")
    os.symlink(".", root / "self")
    os.symlink("../art", root / "again")
    os.symlink("..", root / "room" / "up")
    os.symlink("room", root / "a-link-to-room")  # sorts before the real folder: the real path still wins
    return root


def find(inputs, timeout=60, report_skipped=True):
    """`find_images(inputs[, skipped=...])` in a fresh interpreter, given a minute: a walk that loops never returns."""
    script = (
        "import json, sys\n"
        "from sevlm.images import find_images\n"
        "skipped = []\n"
        f"paths, problems = find_images(json.loads(sys.argv[1]){', skipped=skipped' if report_skipped else ''})\n"
        "print(json.dumps([[str(p) for p in paths], problems, [str(p) for p in skipped]]))\n"
    )
    import json

    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run([sys.executable, "-c", script, json.dumps(inputs)], capture_output=True, text=True, timeout=timeout, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_links_to_folders_are_followed_once(looped):
    paths, problems, skipped = find([str(looped)])
    assert paths == [str(looped / "a.png"), str(looped / "room" / "b.png"), str(looped / "room" / "c.JPG")]
    assert problems == [] and skipped == [str(looped / "notes.txt"), str(looped / "room" / "logo.svg")]


def test_recursive_patterns_end_on_looping_links(looped):
    """`"DIR/**/*.png"` over a folder with links to itself ran forever (glob follows every link at every depth)."""
    paths, problems, _ = find([str(looped / "**" / "*.png"), str(looped / "**" / "*.JPG")], report_skipped=False)
    assert sorted(paths) == [str(looped / "a.png"), str(looped / "room" / "b.png"), str(looped / "room" / "c.JPG")]
    assert problems == []


def test_a_linked_folder_outside_is_read(tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "d.png").write_bytes(b"picture")
    root = tmp_path / "art"
    root.mkdir()
    os.symlink(outside, root / "loan")
    paths, _, _ = find([str(root)], report_skipped=False)
    assert paths == [str(root / "loan" / "d.png")]
    paths, _, _ = find([str(root / "**" / "*.png")], report_skipped=False)
    assert paths == [str(root / "loan" / "d.png")]


def test_sevlm_outputs_in_a_folder_are_not_works(tmp_path):
    """A gallery, a report or a Space written among the works, and an index or model folder below the folder named,
    are skipped when a folder is walked, and said; a file named directly is still taken."""
    import json

    from sevlm.images import find_images
    from sevlm.io import record_entries
    from sevlm.space import MANIFEST

    root = tmp_path / "art"
    for name in ("a.png", "contact_sheet.png", "plots/distribution.png", "space/examples/work-1.jpg", "space/logo.png",
                 "index/thumb.png", "model/sample.png", "room/b.png"):  # fmt: skip
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"picture")
    record_entries(root, ["contact_sheet.png", "index.html", "plots"], "search gallery")
    (root / "space" / MANIFEST).write_text(json.dumps({"format": 1, "files": {"examples/work-1.jpg": {}}}))
    (root / "index" / "index_config.json").write_text("{}")
    (root / "model" / "config.json").write_text("{}")
    (root / "model" / "model.safetensors").write_bytes(b"")
    outputs = []
    paths, problems = find_images([str(root)], outputs=outputs)
    assert [str(path) for path in paths] == [str(root / name) for name in ("a.png", "room/b.png", "space/logo.png")]
    assert sorted(str(path) for path in outputs) == sorted(str(root / name) for name in ("contact_sheet.png", "index", "model", "plots", "space/examples"))
    assert problems == []
    paths, _ = find_images([str(root / "contact_sheet.png"), str(root / "space")])
    assert [str(path) for path in paths] == [str(root / "contact_sheet.png"), str(root / "space" / "logo.png")]
