"""A Hugging Face Space of the web app: one folder that starts on its own (`sevlm-publish --space DIR --model M`).

    from sevlm.space import write_space

    write_space("space/", "outputs/sevlm-demo", index="outputs/index-demo")

The folder (uploaded as it is: `hf upload you/sevlm-space space/ --repo-type space`):

    README.md          the Space's card: YAML metadata (sdk: gradio, sdk_version, app_file: app.py, ...) and how to run it
    app.py             starts the app of `sevlm.app` on the model and the index here (`python app.py`, as Spaces do)
    requirements.txt   the packages the app imports, from PyPI (Gradio itself comes with the Space's SDK)
    sevlm/             a copy of SEVLM's own package, and beside it the model files (configuration_sevlm.py, ...),
                       which it imports: a Space installs from PyPI, where SEVLM is not, so the code travels with it
    model/             the model folder's own files (`sevlm.hub.hub_files`), with its `art-emotion` pipeline; or
                       nothing when the model is a Hub id, which the app then loads from the Hub when it starts
    index/             the collection's emotion index (what its index_config.json names, no unfinished work), without
                       the publisher's paths: ids relative to the collection's folder (`copy_index`)
    .sevlm-space.json  every file the Space wrote, with its SHA-256
    examples/          up to six works of the collection (JPEG, at most 512 pixels), for the page's examples

The Space is written beside DIR and moved in when complete (`sevlm.io.staged_output`): an earlier Space folder there
is replaced only with `overwrite`, and only its own files, file by file: `.sevlm-space.json` lists every file the
Space wrote with its SHA-256, so that a file added by hand (in `examples/` too) stays, and a file changed since it was
written (an edited README.md) is never replaced: the run is refused, naming it. A git checkout's `.git/` and
`.gitattributes` stay. A fresh clone of a Hugging Face Space (its generated README.md: the Space's metadata and the
line that points to the configuration reference) is taken over: its metadata (title, emoji, colours, license, ...)
is kept, with the SDK, its version and the app file set here. The folder may not be (or be inside) an index, a
model folder, or the --index / --model it is made from.
"""

import hashlib
import html
import importlib.metadata
import json
import os
import re
import shutil
import sys
from pathlib import Path

from sevlm.io import (
    check_outside_input_folders,
    display_path,
    listed,
    read_record,
    record_entries,
    staged_output,
    write_json_atomic,
    write_text_atomic,
)

SPACE_OWNER = "Space folder"
MODEL_DIR = "model"
INDEX_DIR = "index"
EXAMPLES_DIR = "examples"
EXAMPLE_COUNT = 6
EXAMPLE_SIZE = 512
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
# What the app imports, as PyPI names; the versions are those SEVLM requires (its installed metadata). Gradio is the
# Space's SDK (README's sdk_version), so it is not listed.
APP_REQUIREMENTS = ("torch", "transformers", "datasets", "accelerate", "safetensors", "huggingface_hub", "pillow", "numpy", "tqdm", "faiss-cpu")
SKIPPED_PACKAGE_PARTS = ("__pycache__",)
README = "README.md"
MANIFEST = ".sevlm-space.json"  # every file the Space wrote, with its SHA-256
MANIFEST_FORMAT = 1
# A Space repository's generated README.md: its metadata, then this line alone.
HUB_README_LINE = "Check out the configuration reference at https://huggingface.co/docs/hub/spaces-config-reference"
# The metadata the Space sets whatever a taken-over README said; its other keys (title, emoji, colours, license,
# short_description, ...) are kept.
SPACE_METADATA = ("sdk", "sdk_version", "python_version", "app_file", "models")
TITLE_LENGTH = 80  # characters of the title kept


def requirements():
    """The lines of requirements.txt: each of `APP_REQUIREMENTS` with the version range SEVLM's metadata gives it."""
    try:
        declared = importlib.metadata.requires("sevlm") or []
    except importlib.metadata.PackageNotFoundError:
        declared = []
    ranges = {}
    for line in declared:
        if ";" in line:  # extras ("gradio>=5; extra == 'app'") are not the app's requirements here
            continue
        name = re.split(r"[<>=!~ \[]", line, maxsplit=1)[0]
        ranges[normalized(name)] = line.strip()
    return [ranges.get(normalized(name), name) for name in APP_REQUIREMENTS]


def normalized(name):
    """A distribution name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def package_files():
    """`(source, relative path)` of SEVLM's own package (its Python files and the data it ships: configs, READMEs)
    and of the model files it imports, as they are installed here."""
    import configuration_sevlm
    import modeling_sevlm
    import pipeline_sevlm
    import processing_sevlm
    import sevlm

    root = Path(sevlm.__file__).resolve().parent
    files = []
    for folder, subfolders, names in os.walk(root, followlinks=True):  # a checkout's sevlm/configs is a link
        subfolders[:] = sorted(name for name in subfolders if name not in SKIPPED_PACKAGE_PARTS)
        for name in sorted(names):
            path = Path(folder) / name
            if path.suffix in (".py", ".args", ".json", ".md") and path.is_file():
                files.append((path, Path("sevlm") / path.relative_to(root)))
    for module in (configuration_sevlm, modeling_sevlm, processing_sevlm, pipeline_sevlm):
        source = Path(module.__file__).resolve()
        files.append((source, Path(source.name)))
    return files


def sevlm_version():
    try:
        return importlib.metadata.version("sevlm")
    except importlib.metadata.PackageNotFoundError:
        return "from a checkout"


def model_source(model):
    """`("folder", path)` for a local model folder, `("hub", id)` for a Hub id; else an error."""
    text = os.fspath(model)
    if os.path.isdir(text):
        return "folder", Path(text)
    if HUB_ID.fullmatch(text) and not os.path.exists(text):
        return "hub", text
    raise FileNotFoundError(f"--model {display_path(text)}: no such model folder (and not a Hub id such as you/sevlm-artemis).")


def check_index_fits(index_folder, kind, model):
    """The index must exist and, for a local model, have been made by a model with the same emotions."""
    import json

    from sevlm.index.store import read_config

    config = read_config(index_folder)
    if config is None:
        raise FileNotFoundError(f"--index {display_path(index_folder)} is not an emotion index (no index_config.json); build one with sevlm-index.")
    if kind == "folder":
        emotions = json.loads((model / "config.json").read_text(encoding="utf-8")).get("emotions")
        if emotions is not None and list(emotions) != list(config["emotions"]):
            raise ValueError(
                f"--index {display_path(index_folder)} was built with a model whose emotions are {config['emotions']}; "
                f"--model {display_path(model)} has {emotions}. Give the index built with this model."
            )
    return config


def copy_index(index_folder, config, target, model_entry=None):
    """Copy what an index's config names (not its unfinished work, nor its lock) into `target`, recorded as an
    index there, without the publisher's paths (`neutral_ids`): the works' ids that are absolute file paths become
    paths relative to the folder that holds them all, their `file` is emptied (the Space has the thumbnails, not the
    files), the config names `model_entry` as its model and its metadata sources by file name only."""
    from sevlm.index.store import CONFIG_NAME, FAISS_DIR, OWNER, PARTS_DIR

    index_folder, target = Path(index_folder), Path(target)
    (target / PARTS_DIR).mkdir(parents=True)
    (target / FAISS_DIR).mkdir()
    renamed = neutral_ids(index_folder, config)
    for part in config["parts"]:
        copy_part(index_folder / PARTS_DIR / part, target / PARTS_DIR / part, renamed)
    for name in config["faiss"].values():
        shutil.copyfile(index_folder / FAISS_DIR / name, target / FAISS_DIR / name)
    shutil.copytree(index_folder / config["vad_dir"], target / config["vad_dir"])
    names = [CONFIG_NAME, PARTS_DIR, FAISS_DIR, config["vad_dir"]]
    copied = json.loads((index_folder / CONFIG_NAME).read_text(encoding="utf-8"))
    if config.get("metadata"):
        copy_metadata(index_folder / config["metadata"]["file"], target / config["metadata"]["file"], renamed)
        names.append(config["metadata"]["file"])
        sources = copied["metadata"].get("sources")
        if isinstance(sources, list):
            copied["metadata"]["sources"] = [os.path.basename(str(source)) for source in sources]
    if model_entry is not None:
        copied["model"] = str(model_entry)
    write_json_atomic(target / CONFIG_NAME, copied)
    record_entries(target, names, OWNER)


def neutral_ids(index_folder, config):
    """`{id: new id}` for the works whose id is an absolute path: the path relative to the folder holding all of them
    (empty when no id is a path, or when a new id would be taken)."""
    from sevlm.index.store import load_parts

    ids = load_parts(index_folder, config["parts"]).data.column("id").to_pylist()
    paths = [item for item in ids if item and os.path.isabs(item)]
    if not paths:
        return {}
    root = os.path.commonpath(paths)
    if root in paths:  # a single work, or one that is the folder of the others
        root = os.path.dirname(root)
    renamed = {item: Path(os.path.relpath(item, root)).as_posix() for item in paths}
    others = set(ids) - set(paths)
    if len(set(renamed.values())) != len(renamed) or others & set(renamed.values()):
        return {}
    return renamed


def copy_part(source, target, renamed):
    """Copy an index part (`datasets.save_to_disk`), its ids renamed by `renamed` and its files emptied."""
    import datasets

    from sevlm.index.store import quiet_datasets

    if not renamed:
        shutil.copytree(source, target)
        return
    with quiet_datasets():
        part = datasets.load_from_disk(str(source), keep_in_memory=True)

        def neutral(batch):
            return {"id": [renamed.get(item, item) for item in batch["id"]], "file": ["" for _ in batch["file"]]}

        part = part.map(neutral, batched=True, keep_in_memory=True, features=part.features)
        part.save_to_disk(str(target))


def copy_metadata(source, target, renamed):
    """Copy an index's metadata table, its ids renamed by `renamed`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not renamed:
        shutil.copyfile(source, target)
        return
    table = pq.read_table(source)
    ids = pa.array([renamed.get(item, item) for item in table.column("id").to_pylist()], type=table.schema.field("id").type)
    pq.write_table(table.set_column(table.schema.get_field_index("id"), "id", ids), target)


def write_examples(index, target, count=EXAMPLE_COUNT):
    """Up to `count` works of the index as JPEG files in `target` (their files when they are here, else their
    thumbnails), for the page's examples. Returns how many."""
    target.mkdir()
    written = 0
    for row in range(len(index)):
        if written == count:
            break
        (record,) = index.records([row], ("id",))
        picture = index.picture(record["id"], size=EXAMPLE_SIZE)
        if picture is None:
            continue
        written += 1
        picture.convert("RGB").save(target / f"work-{written}.jpg", format="JPEG", quality=90)
    return written


def space_app(title, model_entry, with_index, with_examples):
    """The Space's app.py."""
    return f'''"""SEVLM on a Hugging Face Space: the emotion a painting evokes, and why (written by sevlm-publish --space).

Run it here with `python app.py` (http://127.0.0.1:7860); on a Space the Gradio SDK runs it the same way. The code is
the copy of SEVLM in sevlm/ with the model files beside it; `build()` makes the page without serving it.
"""

import os
from pathlib import Path

HERE = Path(__file__).resolve().parent
TITLE = {title!r}
MODEL = {model_entry!r}  # a folder here, or a Hub model id loaded when the app starts
INDEX = {INDEX_DIR if with_index else None!r}  # the collection's emotion index, or None
EXAMPLES = {EXAMPLES_DIR if with_examples else None!r}
TOP_K = 8  # works per list


def build():
    """The app's page (Gradio Blocks), with the model and the collection loaded."""
    from sevlm.app import make_app

    model = str(HERE / MODEL) if (HERE / MODEL).is_dir() else MODEL
    index = str(HERE / INDEX) if INDEX else None
    examples = [str(HERE / EXAMPLES)] if EXAMPLES else None
    return make_app(model, index=index, examples=examples, top_k=TOP_K, title=TITLE)


def main():
    from sevlm.app import launch

    # A Space sets GRADIO_SERVER_NAME=0.0.0.0 (its proxy connects from outside); elsewhere this machine only.
    launch(build(), host=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"), port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))


if __name__ == "__main__":
    main()
'''


def space_card(title, model_entry, kind, with_index, index_items, lines, kept=None):
    """The Space's README.md: the Space metadata (YAML; `kept`: the metadata of a Space repository's README taken
    over, whose keys other than `SPACE_METADATA` and the title win) and what a Space needs."""
    import gradio

    version = ".".join(map(str, sys.version_info[:2]))
    collection = f" and an emotion index of {index_items} works (`{INDEX_DIR}/`)" if with_index else ""
    model_line = f"the model folder in `{MODEL_DIR}/`" if kind == "folder" else f"the Hub model `{model_entry}`, loaded when the app starts"
    metadata = "".join(line + "\n" for line in card_metadata(title, model_entry, kind, gradio.__version__, version, kept))
    return f"""---
{metadata}---

# {markdown_text(title)}

A SEVLM web app: upload a painting and see the emotion it evokes, the score of every emotion
and why{", the works of the collection that evoke the same, a search of the collection, recommendations from the works you like" if with_index else ""}.
It runs {model_line}{collection}.

## What a Space needs

- `app.py` is what the Gradio SDK starts (`app_file`); `sdk_version` ({gradio.__version__}) is the Gradio it installs.
- `requirements.txt` lists what the app imports from PyPI:

  ```text
{chr(10).join("  " + line for line in lines)}
  ```

  A Space without a GPU can take torch's CPU build instead (smaller, faster to install): add
  `--extra-index-url https://download.pytorch.org/whl/cpu` as the first line.
- SEVLM itself is not on PyPI: its package is copied here (`sevlm/`, SEVLM {sevlm_version()}) with the model files it imports
  (`configuration_sevlm.py`, `modeling_sevlm.py`, `processing_sevlm.py`, `pipeline_sevlm.py`). To use another
  SEVLM, write the Space again with `sevlm-publish --space` from that installation.
- The app loads the model with its own code (`trust_remote_code`): the code in `{MODEL_DIR}/` is what runs.
- The weights and the index are binary files: `hf upload` sends large ones through Git LFS by itself
  (`hf upload you/sevlm-space . --repo-type space` from this folder).
- {"The model is fetched from the Hub when the app starts; nothing else is" if kind == "hub" else "Nothing is fetched at run time"}: system fonts, no analytics, no version check.

## Run it here

```bash
pip install -r requirements.txt gradio=={gradio.__version__}
python app.py        # http://127.0.0.1:7860 (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT to change)
```
"""


def card_metadata(title, model_entry, kind, gradio_version, python_version, kept=None):
    """The lines of the card's YAML metadata (see `space_card`)."""
    kept = {key: value for key, value in (kept or {}).items() if key not in SPACE_METADATA and key != "title"}
    fields = {
        "title": yaml_text(title),
        "emoji": "\U0001f3a8",
        "colorFrom": "blue",
        "colorTo": "indigo",
        "sdk": "gradio",
        "sdk_version": gradio_version,
        "python_version": f'"{python_version}"',
        "app_file": "app.py",
        "pinned": "false",
        "license": "apache-2.0",
        "short_description": "The emotion a painting evokes, and why",
    }
    lines = [yaml_entry(key, kept.pop(key)) if key in kept else f"{key}: {value}" for key, value in fields.items()]
    lines += [yaml_entry(key, value) for key, value in kept.items()]
    if kind == "hub":
        lines.append(f"models:\n  - {model_entry}")
    return lines


def yaml_entry(key, value):
    """`key: value` as YAML (a kept metadata entry, whatever its value)."""
    import yaml

    return yaml.safe_dump({key: value}, allow_unicode=True, sort_keys=False, width=10_000).rstrip("\n")


def yaml_text(text):
    """A one-line YAML string (quoted)."""
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


def clean_title(text, width=TITLE_LENGTH):
    """A title as one line of plain text: every run of white space (new lines too) one space, control characters
    dropped, at most `width` characters."""
    text = "".join(character for character in str(text) if character.isprintable() or character.isspace())
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1].rstrip() + "\u2026"


MARKDOWN_SIGNIFICANT = re.compile(r"([\\`*_{}\[\]()#+!|~])")


def markdown_text(text):
    """`text` shown as it is in Markdown: HTML escaped, Markdown's punctuation backslash-escaped."""
    return MARKDOWN_SIGNIFICANT.sub(r"\\\1", html.escape(text, quote=False))


def hub_readme_metadata(path):
    """The metadata (a dict) of a Space repository's generated README.md: YAML metadata with `sdk`, then nothing but
    the line pointing to the configuration reference. None for any other file (a README someone wrote)."""
    import yaml

    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return None
    match = re.fullmatch(r"---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n(.*))?", text, re.S)
    if match is None or (match.group(2) or "").strip() not in ("", HUB_README_LINE):
        return None
    try:
        metadata = yaml.safe_load(match.group(1))
    except yaml.YAMLError:
        return None
    if not isinstance(metadata, dict) or "sdk" not in metadata:
        return None
    return {str(key): value for key, value in metadata.items()}


def space_names(kind, with_index, with_examples):
    names = [README, MANIFEST, "app.py", "requirements.txt", "sevlm", *(path.name for _, path in package_files() if len(path.parts) == 1)]
    names += [MODEL_DIR] if kind == "folder" else []
    names += [INDEX_DIR] if with_index else []
    names += [EXAMPLES_DIR] if with_examples else []
    return names


# ------------------------------------------------------------------------------------- file by file
def file_digest(path):
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def files_under(folder, names):
    """The files (and links) of `folder`'s entries `names`, as relative POSIX paths, without Python's caches
    (`__pycache__`, remade whenever the app runs)."""
    folder = Path(folder)
    found = []
    for name in names:
        path = folder / name
        if path.is_symlink() or path.is_file():
            found.append(name)
            continue
        if not path.is_dir() or name in SKIPPED_PACKAGE_PARTS:
            continue
        for current, subfolders, files in os.walk(path):
            current = Path(current)
            links = [entry for entry in subfolders if (current / entry).is_symlink()]
            subfolders[:] = sorted(entry for entry in subfolders if entry not in SKIPPED_PACKAGE_PARTS and entry not in links)
            found += [(current / entry).relative_to(folder).as_posix() for entry in sorted(files + links)]
    return found


def make_manifest(staging, kept):
    """What `MANIFEST` holds: every file of the new Space with its SHA-256, size and time (a file whose size and
    time are unchanged is not read again), and the metadata kept from a README taken over."""
    files = {}
    for relative in files_under(staging, [name for name in sorted(os.listdir(staging)) if name != MANIFEST]):
        status = (staging / relative).stat()
        files[relative] = {"sha256": file_digest(staging / relative), "size": status.st_size, "mtime_ns": status.st_mtime_ns}
    return {"format": MANIFEST_FORMAT, "files": files, "card_metadata": kept}


def read_manifest(folder):
    """The `MANIFEST` of an earlier Space in `folder` (its `files` limited to safe relative paths), or None."""
    try:
        manifest = json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        return None
    files = {}
    for relative, known in manifest["files"].items():
        parts = Path(relative).parts
        if isinstance(known, dict) and parts and not Path(relative).is_absolute() and ".." not in parts:
            files[relative] = known
    kept = manifest.get("card_metadata")
    return {"files": files, "card_metadata": kept if isinstance(kept, dict) else None}


def changed_files(folder, manifest):
    """The files `manifest` lists that were changed since (or replaced by a folder or a link)."""
    changed = []
    for relative, known in sorted(manifest["files"].items()):
        path = Path(folder) / relative
        if path.is_symlink() or (path.exists() and not path.is_file()):
            changed.append(relative)
        elif path.is_file():
            status = path.stat()
            if status.st_size == known.get("size") and status.st_mtime_ns == known.get("mtime_ns"):
                continue
            if status.st_size != known.get("size") or file_digest(path) != known.get("sha256"):
                changed.append(relative)
    return changed


def keep_added_files(target, staging, earlier, manifest, notes):
    """Copy into `staging` the files of the earlier Space's folders (`earlier`) that it did not write (added by hand),
    so that they stay; one the new Space writes too, or in a folder the new Space no longer has, is an error naming
    it. Without a manifest (a Space of an older SEVLM), the files the new Space does not write are kept."""
    folders = [name for name in earlier if (target / name).is_dir() and not (target / name).is_symlink()]
    ours = set(manifest["files"]) if manifest is not None else set()
    added = [relative for relative in files_under(target, folders) if relative not in ours]
    if manifest is None:
        added = [relative for relative in added if not ((staging / relative).exists() or (staging / relative).is_symlink())]
    clashing = [relative for relative in added if (staging / relative).exists() or (staging / relative).is_symlink()]
    orphaned = [relative for relative in added if not (staging / Path(relative).parts[0]).is_dir()]
    if clashing:
        raise FileExistsError(
            f"--space {display_path(target)}: {listed(clashing)} {'was' if len(clashing) == 1 else 'were'} not written by "
            "sevlm-publish, and the new Space writes a file of the same name; refusing to replace it (even with "
            "--overwrite). Move it away and run again."
        )
    if orphaned:
        raise FileExistsError(
            f"--space {display_path(target)}: {listed(orphaned)} {'was' if len(orphaned) == 1 else 'were'} not written by "
            "sevlm-publish, in a folder the new Space no longer has; refusing to remove it (even with --overwrite). Move it "
            "away and run again."
        )
    for relative in added:
        (staging / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(target / relative, staging / relative, follow_symlinks=False)
    if added and notes is not None:
        notes(f"kept {listed(added)}: not written by sevlm-publish")
    return added


def write_space(space_dir, model, index=None, title=None, overwrite=False, report=None, notes=None):
    """Write a Hugging Face Space folder of the web app for `model` (a SEVLM folder, copied in, or a Hub id, loaded
    by the Space when it starts) and the emotion index `index` (copied in), and return its path (see the module
    docstring). `report(name, reason)` hears of the model folder's files left out; `notes(text)` of the files kept
    and the README taken over."""
    from sevlm.hub import add_pipeline_to_folder, copy_hub_files
    from sevlm.index.store import EmotionIndex
    from sevlm.loading import check_model_folder

    kind, source = model_source(model)
    target = Path(space_dir)
    if target.name in ("", ".", ".."):  # `--space .` in a clone: staged beside the folder, not inside it
        target = Path(os.path.abspath(target))
    check_outside_input_folders(target, "--space", [("--index", index), ("--model", source if kind == "folder" else None)])
    if kind == "folder":
        check_model_folder(source)
    collection = config = None
    if index is not None:
        config = check_index_fits(index, kind, source)
        collection = EmotionIndex.load(index)
    with_examples = collection is not None and len(collection) > 0
    names = space_names(kind, collection is not None, with_examples)
    earlier = sorted(name for name, owner in read_record(target).items() if owner == SPACE_OWNER and os.path.lexists(target / name))
    manifest = read_manifest(target) if earlier else None
    if earlier and overwrite and manifest is not None:
        changed = changed_files(target, manifest)
        if changed:
            raise FileExistsError(
                f"--space {display_path(target)}: {listed(changed)} changed since sevlm-publish wrote "
                f"{'it' if len(changed) == 1 else 'them'}; refusing to replace {'it' if len(changed) == 1 else 'them'} (even "
                "with --overwrite). Move your version away (or put back the one written) and run again."
            )
    hub_readme = None
    if README not in earlier and (target / README).is_file():
        hub_readme = hub_readme_metadata(target / README)  # a Space repository's generated README is taken over
    kept = hub_readme if hub_readme is not None else (manifest or {}).get("card_metadata")
    model_entry = MODEL_DIR if kind == "folder" else source
    name = Path(display_path(source)).name if kind == "folder" else source.split("/")[-1]
    kept_title = (kept or {}).get("title")
    title = clean_title(title or (kept_title if isinstance(kept_title, str) and kept_title.strip() else None) or f"SEVLM {name}")
    lines = requirements()
    checked = [entry for entry in names if not (hub_readme is not None and entry == README)]
    # Without an earlier Space here, the only entry of ours at the move is the README taken over.
    with staged_output(target, SPACE_OWNER, checked, overwrite or not earlier, "--overwrite", "--space") as staging:
        for path, relative in package_files():
            (staging / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, staging / relative)
        if kind == "folder":
            (staging / MODEL_DIR).mkdir()
            copy_hub_files(source, staging / MODEL_DIR, report)
            add_pipeline_to_folder(staging / MODEL_DIR)
        if collection is not None:
            copy_index(index, config, staging / INDEX_DIR, model_entry)
        if with_examples and not write_examples(collection, staging / EXAMPLES_DIR):
            (staging / EXAMPLES_DIR).rmdir()  # no work could be read
            with_examples = False
        write_text_atomic(staging / "app.py", space_app(title, model_entry, collection is not None, with_examples))
        write_text_atomic(staging / "requirements.txt", "\n".join(lines) + "\n")
        write_text_atomic(staging / README, space_card(title, model_entry, kind, collection is not None, len(collection or ()), lines, kept))
        write_json_atomic(staging / MANIFEST, make_manifest(staging, kept))
        if earlier:
            keep_added_files(target, staging, earlier, manifest, notes)
        if hub_readme is not None:
            if hub_readme_metadata(target / README) != hub_readme:
                raise FileExistsError(f"--space {display_path(target / README)} changed while the Space was written; run again.")
            record_entries(target, [README], SPACE_OWNER)
            if notes is not None:
                notes(f"took over the Space repository's generated {README} (its metadata kept: {', '.join(sorted(set(hub_readme) - set(SPACE_METADATA))) or 'none'})")
    return target


__all__ = ["APP_REQUIREMENTS", "requirements", "write_space"]
