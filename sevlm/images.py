"""Finding image files: files, folders (searched recursively) and glob patterns, in a stable order.

Folders are walked following symbolic links once: a linked folder is entered the first time its real path is
reached and never again, so a folder holding links to itself (or to a parent) is read once instead of forever.
SEVLM's own outputs met on the way are not works: the entries a folder's output record names (a gallery's
`index.html` and `contact_sheet.png`, a report's plots, a Space's `examples/` and `index/`, `sevlm.io.OUTPUT_RECORD`),
the files a Space's manifest lists, and index and model folders below the folder named are skipped, and said.
The images themselves are read by `processing_sevlm.load_image`, the one image loader of data preparation, training
and inference.
"""

import glob
import os
import re
from pathlib import Path

from sevlm.io import input_folder_kind, read_record

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def find_images(inputs, extensions=IMAGE_EXTENSIONS, skipped=None, outputs=None):
    """Expand files, folders (searched recursively) and glob patterns into image paths.

    Returns `(paths, problems)`: `Path`s in a stable order without duplicates, and `(input, reason)` for each input
    that matched nothing. Files named directly are always taken, whatever their extension. When `skipped` is a list,
    the files found in folders that are not images by their extension (`notes.txt`, `logo.svg`; hidden files aside)
    are appended to it, so that a caller can say what it left out. In folders, SEVLM's own outputs are skipped (see
    `walk_files`); when `outputs` is a list, the folders and image files skipped so are appended to it.
    """
    extensions = {ext.lower() if ext.startswith(".") else "." + ext.lower() for ext in extensions}
    paths, problems, seen = [], [], set()

    def add(path):
        key = os.path.abspath(path)
        if key not in seen:
            seen.add(key)
            paths.append(Path(path))

    for item in inputs:
        item = os.fspath(item)
        if os.path.isfile(item):
            add(item)
        elif os.path.isdir(item):
            left_out = []
            files = sorted(Path(path) for path in walk_files(item, left_out))
            if outputs is not None:
                outputs.extend(Path(path) for path in left_out if os.path.isdir(path) or Path(path).suffix.lower() in extensions)
            found = [path for path in files if path.suffix.lower() in extensions]
            if skipped is not None:
                skipped.extend(path for path in files if path.suffix.lower() not in extensions and not path.name.startswith("."))
            if not found:
                problems.append((item, f"folder holds no image files ({', '.join(sorted(extensions))})"))
            for path in found:
                add(path)
        elif glob.has_magic(item):
            found = sorted(path for path in match_pattern(item) if os.path.isfile(path) and Path(path).suffix.lower() in extensions)
            if not found:
                problems.append((item, "pattern matches no image files"))
            for path in found:
                add(path)
        else:
            problems.append((item, "no such file or folder"))
    return paths, problems


def walk_files(folder, outputs=None):
    """Every file under `folder` (as paths under it), entering each real folder once. Links to folders are followed
    after the real folders (so that a file inside the tree is found by its own path), and only the first time their
    target is reached: links back to a parent or to the folder itself end there.

    SEVLM's outputs are left out (their paths appended to `outputs` when it is a list): the entries that a folder's
    output record names, the files a Space's manifest lists, and the index and model folders below `folder`."""
    root = os.fspath(folder)
    visited, folders, links = set(), [root], []
    while folders or links:
        current = folders.pop() if folders else links.pop(0)
        real = os.path.realpath(current)
        if real in visited:
            continue
        visited.add(real)
        if current != root and input_folder_kind(current) is not None:
            if outputs is not None:
                outputs.append(current)
            continue
        try:
            entries = sorted(os.scandir(current), key=lambda entry: entry.name)
        except OSError:  # unreadable folder, or a link that broke meanwhile
            continue
        written = output_entries(current)
        for entry in entries:
            if entry.name in written:
                if outputs is not None:
                    outputs.append(entry.path)
                continue
            try:
                if entry.is_dir():  # follows links
                    (links if entry.is_symlink() else folders).append(entry.path)
                elif entry.is_file():
                    yield entry.path
            except OSError:
                continue


def output_entries(folder):
    """The names of `folder`'s entries that SEVLM commands wrote: those its output record names, and the first parts
    of the paths a Space's manifest lists."""
    from sevlm.space import MANIFEST, read_manifest

    names = set(read_record(folder))
    if os.path.isfile(os.path.join(folder, MANIFEST)):
        manifest = read_manifest(folder) or {}
        names.update(Path(relative).parts[0] for relative in manifest.get("files", {}))
    return names


def match_pattern(pattern):
    """The paths a glob pattern matches. Patterns with `**` are matched over `walk_files` of their fixed leading folder
    (glob's own `**` follows links without end); others go to `glob.glob`."""
    if "**" not in pattern:
        return glob.glob(pattern)
    parts = Path(pattern).parts
    fixed = next(number for number, part in enumerate(parts) if glob.has_magic(part))
    base = Path(*parts[:fixed]) if fixed else Path(".")
    regex = pattern_regex(parts[fixed:])
    if not base.is_dir():
        return []
    return [path for path in walk_files(base) if regex.fullmatch(Path(os.path.relpath(path, base)).as_posix())]


def pattern_regex(parts):
    """A regex over `/`-joined relative paths for glob components (`**`: any number of folders; `*`, `?`, `[...]`
    within one name). As in `glob`, wildcards do not match names that start with a dot."""
    pieces = []
    for number, part in enumerate(parts):
        last = number == len(parts) - 1
        if part == "**":
            pieces.append(r"(?:[^./][^/]*/)*" if not last else r"(?:[^./][^/]*(?:/[^./][^/]*)*)?")
            continue
        hidden = "" if part.startswith(".") else r"(?!\.)"
        pieces.append(hidden + _component_regex(part) + ("" if last else "/"))
    return re.compile("".join(pieces))


def _component_regex(part):
    out, position = [], 0
    while position < len(part):
        char = part[position]
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = part.find("]", position + 2 if part[position + 1 : position + 2] in ("!", "]") else position + 1)
            if end < 0:
                out.append(re.escape(char))
            else:
                inner = part[position + 1 : end]
                inner = "^" + inner[1:] if inner.startswith("!") else inner
                out.append("[" + inner.replace("\\", "\\\\") + "]")
                position = end
        else:
            out.append(re.escape(char))
        position += 1
    return "".join(out)
