"""sevlm-publish --space: a Hugging Face Space folder of the web app, written without replacing anyone's files, and
started on its own (from another folder, in a fresh Python environment that has the app's requirements but not SEVLM)
and loaded in the real browser."""

import io
import json
import os
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest
from helpers import browser_page, chromium_or_skip, free_port, random_images, serving, write_collection

from sevlm.cli import publish as publish_command
from sevlm.hub import add_pipeline_to_folder
from sevlm.index.build import attach_metadata
from sevlm.index.store import EmotionIndex
from sevlm.space import APP_REQUIREMENTS, LFS_PATTERNS, TORCH_CPU_LINE, requirements


def run(argv):
    stdout, stderr = io.StringIO(), io.StringIO()
    with redirect_stdout(stdout), redirect_stderr(stderr):
        code = publish_command.main(argv)
    return code, stdout.getvalue(), stderr.getvalue()


@pytest.fixture(scope="module")
def space(trained_tiny, tmp_path_factory):
    """A Space written by the command from the tiny model's folder and an index of 8 works with metadata."""
    model, processor, images = trained_tiny
    root = tmp_path_factory.mktemp("space")
    model.save_pretrained(root / "model")
    processor.save_pretrained(root / "model")
    add_pipeline_to_folder(root / "model")
    paintings, works = write_collection(root, images + random_images(4, seed=21))
    EmotionIndex.build([paintings], root / "index", model=model, processor=processor, progress=False)
    attach_metadata(root / "index", works)
    code, stdout, stderr = run(["--space", str(root / "my-space"), "--model", str(root / "model"), "--index", str(root / "index")])
    assert code == 0, stderr
    return {"root": root, "folder": root / "my-space", "stdout": stdout, "paintings": paintings}


def test_the_space_folder_holds_what_a_space_needs(space):
    folder = space["folder"]
    names = sorted(path.name for path in folder.iterdir())
    assert names == sorted([
        ".sevlm-output.json", ".sevlm-space.json", "README.md", "app.py", "requirements.txt", "sevlm", "model", "index", "examples",
        "configuration_sevlm.py", "modeling_sevlm.py", "processing_sevlm.py", "pipeline_sevlm.py",
    ])  # fmt: skip
    readme = (folder / "README.md").read_text(encoding="utf-8")
    header = readme.split("---\n")[1]
    import gradio

    for line in ("sdk: gradio", f"sdk_version: {gradio.__version__}", "app_file: app.py", 'title: "SEVLM model"'):
        assert line + "\n" in header, header
    lines = (folder / "requirements.txt").read_text(encoding="utf-8").splitlines()
    assert lines == requirements() and [line.split(">")[0].split("<")[0].split("=")[0] for line in lines] == list(APP_REQUIREMENTS)
    assert "gradio" not in lines  # the Space's SDK brings it
    assert (folder / "model" / "model.safetensors").is_file() and (folder / "model" / "pipeline_sevlm.py").is_file()
    copied = EmotionIndex.load(folder / "index")
    assert copied.metadata_columns == ["title", "artist", "date", "room"]
    assert len(list((folder / "examples").glob("*.jpg"))) == 6
    assert (folder / "sevlm" / "app.py").is_file() and (folder / "sevlm" / "configs").is_dir()
    assert "Space folder ready" in space["stdout"]


def test_the_spaces_index_holds_no_path_of_this_machine(space):
    """The works' ids become paths relative to the collection's folder; nothing of the publisher's folders is in
    the copied index, which still finds the works, their metadata and their pictures."""
    root = str(space["root"]).encode()
    for path in (space["folder"] / "index").rglob("*"):
        if path.is_file():
            assert root not in path.read_bytes(), path
    copied, original = EmotionIndex.load(space["folder"] / "index"), EmotionIndex.load(space["root"] / "index")
    assert copied.records(range(len(copied)), ("id",)) == [{"id": f"painting-{n}.png"} for n in range(8)]
    assert copied.metadata_of("painting-0.png")["title"] == "Water Lilies" and copied.metadata_of("painting-7.png") == original.metadata_of(str(space["paintings"] / "painting-7.png"))
    assert copied.picture("painting-3.png").size == original.thumbnail(str(space["paintings"] / "painting-3.png")).size
    assert copied.config["model"] == "model"
    np.testing.assert_array_equal(copied.scores, original.scores)


def test_a_folder_that_is_not_a_space_is_left_alone(space, tmp_path):
    mine = tmp_path / "project"
    mine.mkdir()
    (mine / "app.py").write_text("print('my app')\n")
    code, _, stderr = run(["--space", str(mine), "--model", str(space["root"] / "model")])
    assert code == 1 and "app.py" in stderr and (mine / "app.py").read_text() == "print('my app')\n"
    assert sorted(path.name for path in mine.iterdir()) == ["app.py"]
    # an earlier Space is replaced only with --overwrite, and a file added to it (a git checkout's) stays
    (space["folder"] / "notes.txt").write_text("mine")
    code, _, stderr = run(["--space", str(space["folder"]), "--model", str(space["root"] / "model")])
    assert code == 1 and "--overwrite" in stderr
    code, _, stderr = run(["--space", str(space["folder"]), "--model", "someone/sevlm-artemis", "--overwrite"])
    assert code == 0, stderr
    assert (space["folder"] / "notes.txt").read_text() == "mine" and not (space["folder"] / "model").exists() and not (space["folder"] / "index").exists()
    readme = (space["folder"] / "README.md").read_text(encoding="utf-8")
    assert "models:\n  - someone/sevlm-artemis\n" in readme and "MODEL = 'someone/sevlm-artemis'" in (space["folder"] / "app.py").read_text()


def hub_space(space, folder, *extra):
    """A Space of a Hub model with the module's index, written into `folder`."""
    return run(["--space", str(folder), "--model", "someone/sevlm-artemis", "--index", str(space["root"] / "index"), *extra])


def test_overwrite_replaces_file_by_file_and_keeps_files_added_inside(space, tmp_path):
    folder = tmp_path / "s"
    code, _, stderr = hub_space(space, folder)
    assert code == 0, stderr
    (folder / "examples" / "mine.jpg").write_bytes(b"my picture")
    (folder / "sevlm" / "extra").mkdir()
    (folder / "sevlm" / "extra" / "notes.txt").write_text("mine")
    (folder / "sevlm" / "__pycache__").mkdir(exist_ok=True)
    (folder / "sevlm" / "__pycache__" / "app.cpython.pyc").write_bytes(b"cache")
    code, _, stderr = hub_space(space, folder, "--overwrite")
    assert code == 0, stderr
    assert (folder / "examples" / "mine.jpg").read_bytes() == b"my picture" and (folder / "sevlm" / "extra" / "notes.txt").read_text() == "mine"
    assert "kept examples/mine.jpg, sevlm/extra/notes.txt" in stderr
    assert len(list((folder / "examples").glob("work-*.jpg"))) == 6 and (folder / "sevlm" / "app.py").is_file()
    assert not (folder / "sevlm" / "__pycache__").exists()  # Python's cache is remade, not kept
    # a file of a folder the new Space no longer has is not removed: the run is refused, naming it
    (folder / "index" / "notes.txt").write_text("mine")
    code, _, stderr = run(["--space", str(folder), "--model", "someone/sevlm-artemis", "--overwrite"])
    assert code == 1 and "index/notes.txt" in stderr and (folder / "index" / "notes.txt").read_text() == "mine"
    assert (folder / "index" / "index_config.json").is_file()


def test_a_file_changed_since_it_was_written_is_never_replaced(space, tmp_path):
    folder = tmp_path / "s"
    code, _, stderr = hub_space(space, folder)
    assert code == 0, stderr
    edited = (folder / "README.md").read_text(encoding="utf-8") + "\nOur own words.\n"
    (folder / "README.md").write_text(edited, encoding="utf-8")
    (folder / "sevlm" / "render.py").write_text("# patched\n")
    code, _, stderr = hub_space(space, folder, "--overwrite")
    assert code == 1 and "README.md, sevlm/render.py changed since sevlm-publish wrote them" in stderr
    assert (folder / "README.md").read_text(encoding="utf-8") == edited and (folder / "sevlm" / "render.py").read_text() == "# patched\n"


HUB_README = """---
title: Our Exhibition
emoji: \U0001f3c3
colorFrom: red
colorTo: gray
sdk: gradio
sdk_version: 4.0.0
app_file: app.py
pinned: false
license: mit
---

Check out the configuration reference at https://huggingface.co/docs/hub/spaces-config-reference
"""


def test_a_fresh_clone_of_a_space_repository_is_taken_over(space, tmp_path, monkeypatch):
    folder = tmp_path / "clone"
    (folder / ".git").mkdir(parents=True)
    (folder / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (folder / ".gitattributes").write_text("*.safetensors filter=lfs\n")
    (folder / "README.md").write_text(HUB_README, encoding="utf-8")
    monkeypatch.chdir(folder)
    code, _, stderr = hub_space(space, ".")  # as docs/CURATORS.md writes it, from the clone
    monkeypatch.undo()
    assert code == 0, stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["clone"]  # nothing left beside it
    assert "took over the Space repository's generated README.md" in stderr
    assert (folder / ".git" / "HEAD").read_text() == "ref: refs/heads/main\n"
    # the clone's .gitattributes keeps its lines and gains the Git LFS lines it lacks (not *.safetensors: it has one)
    attributes = (folder / ".gitattributes").read_text()
    lfs = "".join(f"{pattern} filter=lfs diff=lfs merge=lfs -text\n" for pattern in LFS_PATTERNS if pattern != "*.safetensors")
    assert attributes == "*.safetensors filter=lfs\n" + lfs
    assert "added to .gitattributes" in stderr and "*.jpg" in stderr
    import gradio

    for _ in range(2):  # and again with --overwrite: the repository's metadata stays
        readme = (folder / "README.md").read_text(encoding="utf-8")
        header = readme.split("---\n")[1]
        for line in ('title: "Our Exhibition"', "emoji: \U0001f3c3", "colorFrom: red", "license: mit", f"sdk_version: {gradio.__version__}", "app_file: app.py"):
            assert line + "\n" in header, header
        assert "# Our Exhibition\n" in readme and "TITLE = 'Our Exhibition'" in (folder / "app.py").read_text()
        code, _, stderr = hub_space(space, folder, "--overwrite")
        assert code == 0, stderr
        assert (folder / ".gitattributes").read_text() == attributes and "added to .gitattributes" not in stderr  # nothing twice
    # a README someone wrote is not the generated one: refused, naming it
    mine = tmp_path / "written"
    mine.mkdir()
    (mine / "README.md").write_text(HUB_README + "\nOur exhibition, in our words.\n", encoding="utf-8")
    code, _, stderr = hub_space(space, mine, "--overwrite")
    assert code == 1 and "README.md" in stderr and "Our exhibition, in our words." in (mine / "README.md").read_text(encoding="utf-8")
    assert sorted(path.name for path in mine.iterdir()) == ["README.md"]


def test_every_binary_file_of_a_space_in_a_git_clone_goes_through_lfs(space, tmp_path):
    """A Hub repository refuses binary files outside Git LFS: in a clone, git itself sends every binary file of the
    Space (weights, index, examples) through LFS after the run; a folder without .git/ gets no .gitattributes."""
    import shutil

    git = shutil.which("git")
    if git is None:
        pytest.skip("git is not installed")
    folder = tmp_path / "clone"
    subprocess.run([git, "init", "-q", str(folder)], check=True)
    code, _, stderr = run(["--space", str(folder), "--model", str(space["root"] / "model"), "--index", str(space["root"] / "index")])
    assert code == 0, stderr
    binary = []
    for path in sorted(folder.rglob("*")):
        if ".git" in path.relative_to(folder).parts or not path.is_file():
            continue
        data = path.read_bytes()
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            binary.append(path.relative_to(folder).as_posix())
            continue
        if b"\0" in data:
            binary.append(path.relative_to(folder).as_posix())
    assert any(name.startswith("examples/") for name in binary) and any(name.startswith("index/faiss/") for name in binary)
    assert any(name.endswith(".safetensors") for name in binary) and any(name.endswith(".arrow") for name in binary)
    checked = subprocess.run([git, "check-attr", "filter", "--", *binary], cwd=folder, capture_output=True, text=True, check=True).stdout
    outside = [line for line in checked.splitlines() if not line.endswith(": filter: lfs")]
    assert not outside, outside
    assert not (space["folder"] / ".gitattributes").exists()  # the module's Space is no clone


def test_a_folder_the_space_wrote_that_is_a_link_now_is_never_replaced(space, tmp_path):
    folder = tmp_path / "s"
    code, _, stderr = hub_space(space, folder)
    assert code == 0, stderr
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "holiday.jpg").write_bytes(b"precious")
    import shutil

    shutil.rmtree(folder / "examples")
    (folder / "examples").symlink_to(photos, target_is_directory=True)
    code, _, stderr = hub_space(space, folder, "--overwrite")
    assert code == 1 and "--space" in stderr and "examples changed since sevlm-publish wrote it" in stderr, stderr
    assert (folder / "examples").is_symlink() and (photos / "holiday.jpg").read_bytes() == b"precious" and sorted(photos.iterdir()) == [photos / "holiday.jpg"]


def test_torch_cpu_and_a_first_extra_index_line_added_by_hand(space, tmp_path):
    folder = tmp_path / "s"
    code, _, stderr = hub_space(space, folder, "--torch_cpu")
    assert code == 0, stderr
    assert (folder / "requirements.txt").read_text().splitlines() == [TORCH_CPU_LINE, *requirements()]
    assert f"torch comes from its CPU build (`{TORCH_CPU_LINE}`" in (folder / "README.md").read_text(encoding="utf-8")
    code, _, stderr = hub_space(space, folder, "--overwrite")  # without the flag: the line written goes
    assert code == 0, stderr
    assert (folder / "requirements.txt").read_text().splitlines() == requirements()
    readme = (folder / "README.md").read_text(encoding="utf-8")
    assert "--torch_cpu" in readme and "added here by hand is kept" in readme
    # the edit the README describes: a first --extra-index-url line, kept when the Space is written again
    mine = "--extra-index-url https://example.org/simple"
    (folder / "requirements.txt").write_text(mine + "\n" + (folder / "requirements.txt").read_text())
    for _ in range(2):
        code, _, stderr = hub_space(space, folder, "--overwrite")
        assert code == 0, stderr
        assert (folder / "requirements.txt").read_text().splitlines() == [mine, *requirements()]
        assert f"kept the first line of requirements.txt added by hand: {mine}" in stderr
    # any other edit is refused, as for every file
    (folder / "requirements.txt").write_text((folder / "requirements.txt").read_text() + "scipy\n")
    code, _, stderr = hub_space(space, folder, "--overwrite")
    assert code == 1 and "requirements.txt changed since sevlm-publish wrote it" in stderr


def cache_model(cache, repo_id, emotions):
    """A Hub model's config.json in a Hugging Face cache, as huggingface_hub leaves it."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0123456789abcdef0123456789abcdef01234567")
    snapshot = repo / "snapshots" / "0123456789abcdef0123456789abcdef01234567"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text(json.dumps({"model_type": "sevlm", "emotions": emotions}))


def test_a_hub_models_emotions_are_checked_from_the_local_cache(space, tmp_path, monkeypatch):
    import huggingface_hub.constants

    cache = tmp_path / "hub-cache"
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    emotions = EmotionIndex.load(space["root"] / "index").emotions
    cache_model(cache, "someone/sevlm-other", ["calm", "storm"])
    cache_model(cache, "someone/sevlm-same", list(emotions))
    index = str(space["root"] / "index")
    code, _, stderr = run(["--space", str(tmp_path / "a"), "--model", "someone/sevlm-other", "--index", index])
    assert code == 1 and "['calm', 'storm']" in stderr and "Give the index built with this model" in stderr and not (tmp_path / "a").exists()
    code, _, stderr = run(["--space", str(tmp_path / "b"), "--model", "someone/sevlm-same", "--index", index])
    assert code == 0 and "warning" not in stderr, stderr
    code, _, stderr = run(["--space", str(tmp_path / "c"), "--model", "someone/sevlm-typo", "--index", index])
    assert code == 0 and "warning: --model someone/sevlm-typo is not in this machine's Hugging Face cache: nothing was checked" in stderr
    assert "hf download someone/sevlm-typo config.json" in stderr


def test_works_from_folders_far_apart_get_short_ids_without_the_machines_folders(trained_tiny, tmp_path):
    """Works whose common folder is `/` (one in /tmp, one in /var/tmp): each id is the shortest end of its path that
    no other work has, and the run says which ids were written."""
    import shutil
    import tempfile

    model, processor, images = trained_tiny
    try:
        elsewhere = Path(tempfile.mkdtemp(prefix="sevlm-far-", dir="/var/tmp"))
    except OSError:
        pytest.skip("/var/tmp cannot be written")
    try:
        if os.path.commonpath([str(elsewhere), str(tmp_path)]) != "/":
            pytest.skip("/var/tmp is inside the test's temporary folder")
        (tmp_path / "imgs").mkdir()
        (elsewhere / "secret_client_name").mkdir()
        (elsewhere / "other").mkdir()
        images[0].save(tmp_path / "imgs" / "w0.png")
        images[1].save(elsewhere / "secret_client_name" / "q.png")
        images[2].save(elsewhere / "other" / "w0.png")
        files = [tmp_path / "imgs" / "w0.png", elsewhere / "secret_client_name" / "q.png", elsewhere / "other" / "w0.png"]
        EmotionIndex.build([str(path) for path in files], tmp_path / "index", model=model, processor=processor, progress=False)
        code, _, stderr = run(["--space", str(tmp_path / "space"), "--model", "someone/sevlm-artemis", "--index", str(tmp_path / "index")])
    finally:
        shutil.rmtree(elsewhere)
    assert code == 0, stderr
    copied = EmotionIndex.load(tmp_path / "space" / "index")
    assert sorted(record["id"] for record in copied.records(range(len(copied)), ("id",))) == ["imgs/w0.png", "other/w0.png", "q.png"]
    assert "the works' ids in the Space are the shortest end of each path that no other work has" in stderr
    assert "imgs/w0.png, other/w0.png, q.png" in stderr
    for path in (tmp_path / "space" / "index").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert b"secret_client_name" not in data and str(tmp_path).encode() not in data and b"sevlm-far-" not in data, path


def test_an_index_or_model_folder_is_never_the_space(space, tmp_path):
    root = space["root"]
    cases = [
        (root / "index", "is --index"),
        (root / "index" / "space", "is inside --index"),
        (root / "model" / "space", "is inside --model"),
    ]
    for target, message in cases:
        code, _, stderr = run(["--space", str(target), "--model", str(root / "model"), "--index", str(root / "index")])
        assert code == 1 and message in stderr, stderr
        assert not (target / "app.py").exists() and not (root / "index" / "space").exists()
    code, _, stderr = run(["--space", str(root / "index" / "space"), "--model", "someone/sevlm-artemis"])
    assert code == 1 and "is an emotion index" in stderr and not (root / "index" / "space").exists()


def test_the_title_is_one_line_of_plain_text(space, tmp_path):
    title = "Our <b>collection</b>\n# Gone *now* [link](http://x) $x$\t\x07end"
    code, _, stderr = run(["--space", str(tmp_path / "s"), "--model", "someone/sevlm-artemis", "--title", title])
    assert code == 0, stderr
    readme = (tmp_path / "s" / "README.md").read_text(encoding="utf-8")
    header = readme.split("---\n")[1]
    assert 'title: "Our <b>collection</b> # Gone *now* [link](http://x) $x$ end"\n' in header
    headings = [line for line in readme.splitlines() if line.startswith("# ")]
    assert headings == [r"# Our &lt;b&gt;collection&lt;/b&gt; \# Gone \*now\* \[link\]\(http://x\) $x$ end"]
    assert "TITLE = 'Our <b>collection</b> # Gone *now* [link](http://x) $x$ end'" in (tmp_path / "s" / "app.py").read_text()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--space", "s"], "--space needs --model"),
        (["--space", "s", "--model", "m", "--hub_model_id", "a/b"], "--hub_model_id is for model folders"),
        (["folder", "--index", "i"], "--index goes with --space"),
        (["folder", "--torch_cpu"], "--torch_cpu goes with --space"),
    ],
)
def test_argument_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        publish_command.main(argv)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_an_index_of_another_model_is_refused(space, tmp_path, trained_tiny):
    from helpers import build_tiny

    model, processor = build_tiny(emotions=["calm", "storm"])
    model.save_pretrained(tmp_path / "other")
    processor.save_pretrained(tmp_path / "other")
    add_pipeline_to_folder(tmp_path / "other")
    code, _, stderr = run(["--space", str(tmp_path / "space"), "--model", str(tmp_path / "other"), "--index", str(space["root"] / "index")])
    assert code == 1 and "Give the index built with this model" in stderr and not (tmp_path / "space").exists()


def fresh_environment(folder):
    """A new virtual environment whose only packages are those of this one's site-packages, read as plain paths: the
    app's requirements are there, SEVLM (an editable install, or a wheel) is not."""
    import site
    import sysconfig

    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    python = folder / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True, check=True).stdout.strip()
    ours = {sysconfig.get_paths()["purelib"], *site.getsitepackages()}
    (folder / purelib / "requirements.pth").parent.mkdir(parents=True, exist_ok=True)
    (folder / purelib / "requirements.pth").write_text("\n".join(sorted(ours)) + "\n")
    return python


@pytest.mark.slow
def test_the_space_starts_on_its_own_and_answers_in_the_browser(trained_tiny, tmp_path):
    """Written afresh (the module's Space is rewritten by another test), started with `python app.py` as a Space
    starts it, from another folder, by a Python that cannot import SEVLM except from the Space."""
    executable = chromium_or_skip()
    model, processor, images = trained_tiny
    model.save_pretrained(tmp_path / "model")
    processor.save_pretrained(tmp_path / "model")
    add_pipeline_to_folder(tmp_path / "model")
    paintings, works = write_collection(tmp_path, images + random_images(4, seed=21))
    EmotionIndex.build([paintings], tmp_path / "index", model=model, processor=processor, progress=False)
    attach_metadata(tmp_path / "index", works)
    code, _, stderr = run(["--space", str(tmp_path / "space"), "--model", str(tmp_path / "model"), "--index", str(tmp_path / "index"), "--title", "Our collection"])
    assert code == 0, stderr
    # the Space must not need the files it was made from
    (tmp_path / "model").rename(tmp_path / "model-gone")
    (tmp_path / "index").rename(tmp_path / "index-gone")

    python = fresh_environment(tmp_path / "fresh")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("GRADIO_", "PYTHON"))}
    probe = subprocess.run([str(python), "-c", "import sevlm"], cwd=elsewhere, env=env, capture_output=True, text=True)
    assert probe.returncode == 1 and "No module named 'sevlm'" in probe.stderr  # only the Space's copy can be found
    probe = subprocess.run([str(python), "-c", "import torch, transformers, gradio, faiss, datasets"], cwd=elsewhere, env=env, capture_output=True, text=True)
    assert probe.returncode == 0, probe.stderr

    port = free_port()
    env.update(HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf_home"), OMP_NUM_THREADS="1", GRADIO_TEMP_DIR=str(tmp_path / "gradio"), GRADIO_SERVER_PORT=str(port))
    url = f"http://127.0.0.1:{port}"
    with serving([str(python), str(tmp_path / "space" / "app.py")], url, elsewhere, env, tmp_path / "space.log"):
        with browser_page(executable, tmp_path / "profile") as page:
            page.goto(url)
            page.wait_for_selector("text=Our collection")
            page.locator("#painting input[type=file]").set_input_files(str(paintings / "painting-0.png"))
            page.wait_for_function("() => document.querySelector('#explanation textarea')?.value.length > 0")
            page.wait_for_selector("#similar [data-id]")
            shown = page.locator("#similar [data-id]").evaluate_all("cards => cards.map(card => card.dataset.id)")
            assert shown[0] == "painting-0.png"  # the collection's ids, relative to its folder in the Space's copy of the index
            assert "Water Lilies" in page.locator("#similar").inner_text()
            foreign = [address for address in page.requests if not address.startswith((url + "/", "data:", "blob:")) and address != url]
            assert not foreign, foreign
    log = (tmp_path / "space.log").read_text(encoding="utf-8")
    assert "Traceback" not in log, log[-3000:]
