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
                       the publisher's paths: ids relative to the collection's folder, or the shortest distinct ends
                       of the paths when the works' common folder is near the top (`/`, `/home/you`) (`neutral_ids`)
    .sevlm-space.json  every file the Space wrote, with its SHA-256
    examples/          up to six works of the collection (JPEG, at most 512 pixels), for the page's examples

The Space is written beside DIR and moved in when complete (`sevlm.io.staged_output`): an earlier Space folder there
is replaced only with `overwrite`, and only its own files, file by file: `.sevlm-space.json` lists every file the
Space wrote with its SHA-256, so that a file added by hand (in `examples/` too) stays, and a file changed since it was
written (an edited README.md, a folder replaced by a link) is never replaced: the run is refused, naming it; only
`--extra-index-url` lines put first in requirements.txt are kept. A git checkout's `.git/` stays, and its
`.gitattributes` gains the Git LFS lines it lacks for the Space's binary files (`LFS_PATTERNS`), its own lines kept. A fresh clone of a Hugging Face Space (its generated README.md: the Space's metadata and the
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
    file_sha256,
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
REQUIREMENTS = "requirements.txt"
# torch's CPU build (smaller, faster to install on a Space without a GPU): `--torch_cpu` writes it as the first line
# of requirements.txt; a first `--extra-index-url` line added by hand is kept when the Space is written again.
TORCH_CPU_LINE = "--extra-index-url https://download.pytorch.org/whl/cpu"
# The Space's binary files, which a Hub repository takes through Git LFS (or Xet) only: in a git clone, these patterns
# are added to .gitattributes (the lines it lacks; its own lines stay).
LFS_PATTERNS = ("*.safetensors", "*.bin", "*.arrow", "*.parquet", "*.npy", "*.jpg", "*.jpeg", "*.png", "index/faiss/*")
LFS_ATTRIBUTES = "filter=lfs diff=lfs merge=lfs -text"
GITATTRIBUTES = ".gitattributes"
MANIFEST = ".sevlm-space.json"  # every file the Space wrote, with its SHA-256
MANIFEST_FORMAT = 1
# A Space repository's generated README.md: its metadata, then this line alone.
HUB_README_LINE = "Check out the configuration reference at https://huggingface.co/docs/hub/spaces-config-reference"
# The metadata the Space sets whatever a taken-over README said; its other keys (title, emoji, colours, license,
# short_description, ...) are kept.
SPACE_METADATA = ("sdk", "sdk_version", "python_version", "app_file", "models")
TITLE_LENGTH = 80  # characters of the title kept
# A works' common folder with fewer parts than this (`/`, `/tmp`, `/home/you`) is too near the top of the machine:
# paths relative to it would carry its folder structure into the Space; the shortest distinct ends are used instead.
SHALLOW_ROOT = 3


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


def model_emotions(kind, model, notes=None):
    """The emotions of the model (a list), or None when they cannot be read: for a Hub id, from its config.json in
    this machine's Hugging Face cache (nothing is downloaded); when it is not there, `notes(text)` hears that neither
    the model nor its emotions were checked."""
    if kind == "folder":
        config_file = Path(model) / "config.json"
    else:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(model, "config.json")
        if not isinstance(cached, str):
            if notes is not None:
                notes(
                    f"warning: --model {model} is not in this machine's Hugging Face cache: nothing was checked, neither that "
                    "the model exists nor that its emotions are the --index's (a typo or another model shows only when the "
                    f"Space starts). To have it checked, download its config first (hf download {model} config.json) and "
                    "run again."
                )
            return None
        config_file = Path(cached)
    try:
        emotions = json.loads(config_file.read_text(encoding="utf-8")).get("emotions")
    except (OSError, ValueError, AttributeError) as error:
        raise ValueError(f"--model {display_path(model)}: its config.json cannot be read ({error}).") from None
    if emotions is None and kind == "hub" and notes is not None:
        notes(f"warning: --model {model}'s config.json (in this machine's Hugging Face cache) names no emotions: it may not be a SEVLM model.")
    return None if emotions is None else list(emotions)


def check_index_fits(index_folder, kind, model, notes=None):
    """The index must exist and have been made by a model with the same emotions (a Hub model's, when its config is
    in the local cache; else `notes` hears that this was not checked)."""
    from sevlm.index.store import read_config

    config = read_config(index_folder)
    if config is None:
        raise FileNotFoundError(f"--index {display_path(index_folder)} is not an emotion index (no index_config.json); build one with sevlm-index.")
    emotions = model_emotions(kind, model, notes)
    if emotions is not None and emotions != list(config["emotions"]):
        raise ValueError(
            f"--index {display_path(index_folder)} was built with a model whose emotions are {config['emotions']}; "
            f"--model {display_path(model)} has {emotions}{' (its config in the Hugging Face cache)' if kind == 'hub' else ''}. "
            "Give the index built with this model."
        )
    return config


def copy_index(index_folder, config, target, model_entry=None, notes=None):
    """Copy what an index's config names (not its unfinished work, nor its lock) into `target`, recorded as an
    index there, without the publisher's paths (`neutral_ids`): the works' ids that are absolute file paths become
    paths relative to the folder that holds them all (or their shortest distinct ends), their `file` is emptied (the Space has the thumbnails, not the
    files), the config names `model_entry` as its model and its metadata sources by file name only."""
    from sevlm.index.store import CONFIG_NAME, FAISS_DIR, OWNER, PARTS_DIR

    index_folder, target = Path(index_folder), Path(target)
    (target / PARTS_DIR).mkdir(parents=True)
    (target / FAISS_DIR).mkdir()
    renamed = neutral_ids(index_folder, config, notes)
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


def neutral_ids(index_folder, config, notes=None):
    """`{id: new id}` for the works whose id is an absolute path, so that no folder of this machine reaches the Space:
    the path relative to the folder holding all of them when that folder lies deep enough (`SHALLOW_ROOT`), else the
    shortest end of each path that no other work's id has (`q.png`, `imgs/w0.png`), as when the works come from
    folders far apart. `notes(text)` hears which ids were written. Empty when no id is a path."""
    from sevlm.index.store import load_parts

    ids = load_parts(index_folder, config["parts"]).data.column("id").to_pylist()
    paths = [item for item in ids if item and os.path.isabs(item)]
    if not paths:
        return {}
    others = set(ids) - set(paths)
    root = os.path.commonpath(paths)
    if root in paths:  # a single work, or one that is the folder of the others
        root = os.path.dirname(root)
    renamed = {item: Path(os.path.relpath(item, root)).as_posix() for item in paths}
    deep = len(Path(root).parts) - 1 >= SHALLOW_ROOT
    if deep and len(set(renamed.values())) == len(renamed) and not others & set(renamed.values()):
        how = f"their paths relative to the folder that holds them all ({root})"
    else:
        renamed = shortest_ends(paths, others)
        why = f"the works' common folder, {root}, is too near the top to leave out" if not deep else "paths relative to their folder would be taken"
        how = f"the shortest end of each path that no other work has ({why})"
    if notes is not None:
        notes(f"the works' ids in the Space are {how}: {listed(sorted(renamed.values()))}")
    return renamed


def shortest_ends(paths, others=()):
    """`{path: the shortest end of it (its last parts, as a POSIX path) that no other path ends with and no id of
    `others` is}`: distinct whatever the paths (two equal ends have as many parts, so the paths would share an end of
    that length); a path that is the end of another one is whole (without its root). An error when even that is taken."""
    from collections import Counter

    parts = {path: Path(path).parts[1:] for path in paths}  # without the root (`/`, `C:\\`)
    ends, left = {}, dict(parts)
    for length in range(1, max(map(len, parts.values())) + 1):
        counts = Counter(mine[-length:] for mine in parts.values() if len(mine) >= length)
        for path, mine in list(left.items()):
            end = mine[-length:]
            if len(mine) >= length and counts[end] == 1 and "/".join(end) not in others:
                ends[path] = "/".join(end)
                del left[path]
    for path, mine in list(left.items()):  # the end of another path (`/a/b` of `/x/a/b`, which got `x/a/b`): all of it
        whole = "/".join(mine)
        if whole not in others and whole not in ends.values():
            ends[path] = whole
            del left[path]
    if left:
        raise ValueError(
            f"--index: the work {next(iter(left))} has no id for the Space that would not name this machine's folders (the "
            "ids of other works end the same way); rebuild the index from one collection folder."
        )
    return ends


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

{torch_line(lines)}
- SEVLM itself is not on PyPI: its package is copied here (`sevlm/`, SEVLM {sevlm_version()}) with the model files it imports
  (`configuration_sevlm.py`, `modeling_sevlm.py`, `processing_sevlm.py`, `pipeline_sevlm.py`). To use another
  SEVLM, write the Space again with `sevlm-publish --space` from that installation.
- The app loads the model with its own code (`trust_remote_code`): the code in `{MODEL_DIR}/` is what runs.
- The weights, the index and the examples are binary files, which the Hub takes through Git LFS (or Xet) only.
  `hf upload you/sevlm-space . --repo-type space` from this folder does that by itself. With git (a clone of the
  Space), `.gitattributes` must send them through Git LFS: `sevlm-publish --space` adds the lines it lacks for
  {", ".join(f"`{pattern}`" for pattern in LFS_PATTERNS)} when it writes into a clone (its own lines stay); run
  `git lfs install` once before `git add`.
- {"The model is fetched from the Hub when the app starts; nothing else is" if kind == "hub" else "Nothing is fetched at run time"}: system fonts, no analytics, no version check.

## Run it here

```bash
pip install -r requirements.txt gradio=={gradio.__version__}
python app.py        # http://127.0.0.1:7860 (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT to change)
```
"""


def torch_line(lines):
    """What the card says of torch's CPU build: in use (the first line of `lines`), or how to ask for it."""
    if TORCH_CPU_LINE in lines:
        return (
            f"  torch comes from its CPU build (`{TORCH_CPU_LINE}`, the first line: `--torch_cpu`), smaller and faster to\n"
            "  install on a Space without a GPU."
        )
    return (
        "  A Space without a GPU can take torch's CPU build instead (smaller, faster to install): write the Space again\n"
        f"  with `sevlm-publish --space ... --torch_cpu`, which puts `{TORCH_CPU_LINE}` first. A first\n"
        "  `--extra-index-url` line added here by hand is kept too when the Space is written again; any other change\n"
        "  to this file makes `sevlm-publish --space` refuse to replace it."
    )


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


def extra_index_lines(folder, manifest):
    """The `--extra-index-url` lines someone put first in the earlier Space's requirements.txt (as its README
    suggests for torch's CPU build), on top of the file written, with those an earlier run kept the same way
    (`requirements_kept` in its manifest); [] when the file is anything else."""
    path = Path(folder) / REQUIREMENTS
    known = manifest["files"].get(REQUIREMENTS)
    if known is None or path.is_symlink() or not path.is_file():
        return []
    try:
        lines = path.read_bytes().decode("utf-8").splitlines(keepends=True)
    except (OSError, UnicodeDecodeError):
        return []
    first = 0
    while first < len(lines) and lines[first].split(maxsplit=1)[:1] == ["--extra-index-url"]:
        first += 1
    kept = set(manifest.get("requirements_kept") or ())
    for added in range(first + 1):  # lines[:added] put there by hand, lines[added:] the file written
        if hashlib.sha256("".join(lines[added:]).encode("utf-8")).hexdigest() == known.get("sha256"):
            found = [" ".join(line.split()) for line in lines[:first]]
            return found[:added] + [line for line in found[added:] if line in kept]
    return []


def add_lfs_patterns(folder):
    """Add to `folder`'s .gitattributes (made if missing) a Git LFS line for each of `LFS_PATTERNS` that no line of
    it names yet; its own lines stay as they are. Returns the patterns added."""
    path = Path(folder) / GITATTRIBUTES
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    named = {line.split()[0] for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")}
    missing = [pattern for pattern in LFS_PATTERNS if pattern not in named]
    if missing:
        lines = "".join(f"{pattern} {LFS_ATTRIBUTES}\n" for pattern in missing)
        write_text_atomic(path, text + ("\n" if text and not text.endswith("\n") else "") + lines)
    return missing


# ------------------------------------------------------------------------------------- file by file
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


def make_manifest(staging, kept, requirements_kept=()):
    """What `MANIFEST` holds: every file of the new Space with its SHA-256, size and time (a file whose size and
    time are unchanged is not read again), and the metadata kept from a README taken over."""
    files = {}
    for relative in files_under(staging, [name for name in sorted(os.listdir(staging)) if name != MANIFEST]):
        status = (staging / relative).stat()
        files[relative] = {"sha256": file_sha256(staging / relative), "size": status.st_size, "mtime_ns": status.st_mtime_ns}
    return {"format": MANIFEST_FORMAT, "files": files, "card_metadata": kept, "requirements_kept": list(requirements_kept)}


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
    lines = manifest.get("requirements_kept")
    lines = [line for line in lines if isinstance(line, str)] if isinstance(lines, list) else []
    return {"files": files, "card_metadata": kept if isinstance(kept, dict) else None, "requirements_kept": lines}


def changed_files(folder, manifest):
    """The files `manifest` lists that were changed since (or replaced by a folder or a link), and the folders they
    were written in that are links now (a folder the Space wrote, replaced by a link to another one)."""
    changed, linked = [], set()
    for relative, known in sorted(manifest["files"].items()):
        path = Path(folder) / relative
        parents = [Path(*Path(relative).parts[:length]) for length in range(1, len(Path(relative).parts))]
        link = next((parent for parent in parents if (Path(folder) / parent).is_symlink()), None)
        if link is not None:
            if link.as_posix() not in linked:
                linked.add(link.as_posix())
                changed.append(link.as_posix())
            continue
        if path.is_symlink() or (path.exists() and not path.is_file()):
            changed.append(relative)
        elif path.is_file():
            status = path.stat()
            if status.st_size == known.get("size") and status.st_mtime_ns == known.get("mtime_ns"):
                continue
            if status.st_size != known.get("size") or file_sha256(path) != known.get("sha256"):
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


def write_space(space_dir, model, index=None, title=None, overwrite=False, report=None, notes=None, torch_cpu=False):
    """Write a Hugging Face Space folder of the web app for `model` (a SEVLM folder, copied in, or a Hub id, loaded
    by the Space when it starts) and the emotion index `index` (copied in), and return its path (see the module
    docstring). `torch_cpu`: requirements.txt takes torch's CPU build (`TORCH_CPU_LINE`). `report(name, reason)`
    hears of the model folder's files left out; `notes(text)` of the ids written, the files kept, the README taken
    over, the lines added to a git clone's .gitattributes and a Hub model that could not be checked."""
    from sevlm.hub import add_pipeline_to_folder, copy_hub_files
    from sevlm.index.store import EmotionIndex
    from sevlm.loading import check_model_folder

    kind, source = model_source(model)
    target = Path(space_dir)
    if target.name in ("", ".", ".."):  # `--space .` in a clone: staged beside the folder, not inside it
        target = Path(os.path.abspath(target))
    check_outside_input_folders(target, "--space", [("--index", index), ("--model", source if kind == "folder" else None)])
    attributes = target / GITATTRIBUTES
    if (target / ".git").exists() and (attributes.is_symlink() or (attributes.exists() and not attributes.is_file())):
        raise FileExistsError(f"--space {display_path(attributes)} is not a plain file; make it one (or move it away) and run again.")
    if kind == "folder":
        check_model_folder(source)
    collection = config = None
    if index is not None:
        config = check_index_fits(index, kind, source, notes)
        collection = EmotionIndex.load(index)
    elif kind == "hub":
        model_emotions(kind, source, notes)  # is it there at all (in the cache)? else a warning
    with_examples = collection is not None and len(collection) > 0
    names = space_names(kind, collection is not None, with_examples)
    earlier = sorted(name for name, owner in read_record(target).items() if owner == SPACE_OWNER and os.path.lexists(target / name))
    manifest = read_manifest(target) if earlier else None
    index_lines = extra_index_lines(target, manifest) if earlier and manifest is not None else []
    if earlier and overwrite and manifest is not None:
        changed = [entry for entry in changed_files(target, manifest) if not (index_lines and entry == REQUIREMENTS)]
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
    first = index_lines + ([TORCH_CPU_LINE] if torch_cpu and TORCH_CPU_LINE not in index_lines else [])
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
            copy_index(index, config, staging / INDEX_DIR, model_entry, notes)
        if with_examples and not write_examples(collection, staging / EXAMPLES_DIR):
            (staging / EXAMPLES_DIR).rmdir()  # no work could be read
            with_examples = False
        write_text_atomic(staging / "app.py", space_app(title, model_entry, collection is not None, with_examples))
        write_text_atomic(staging / REQUIREMENTS, "\n".join(first + lines) + "\n")
        write_text_atomic(staging / README, space_card(title, model_entry, kind, collection is not None, len(collection or ()), first + lines, kept))
        write_json_atomic(staging / MANIFEST, make_manifest(staging, kept, index_lines))
        if earlier:
            keep_added_files(target, staging, earlier, manifest, notes)
        if hub_readme is not None:
            if hub_readme_metadata(target / README) != hub_readme:
                raise FileExistsError(f"--space {display_path(target / README)} changed while the Space was written; run again.")
            record_entries(target, [README], SPACE_OWNER)
            if notes is not None:
                notes(f"took over the Space repository's generated {README} (its metadata kept: {', '.join(sorted(set(hub_readme) - set(SPACE_METADATA))) or 'none'})")
    if index_lines and notes is not None:
        notes(f"kept the first line{'s' if len(index_lines) > 1 else ''} of {REQUIREMENTS} added by hand: {'; '.join(index_lines)}")
    if (target / ".git").exists():  # a git clone (of a Hub Space): its binary files must go through Git LFS
        added = add_lfs_patterns(target)
        if added and notes is not None:
            notes(
                f"added to {GITATTRIBUTES} (the Hub takes binary files through Git LFS only; run `git lfs install` once before "
                f"`git add`): {', '.join(added)}"
            )
    return target


__all__ = ["APP_REQUIREMENTS", "requirements", "write_space"]
