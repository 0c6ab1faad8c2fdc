"""Finding image files: files, folders (searched recursively) and glob patterns, in a stable order.

The images themselves are read by `processing_sevlm.load_image`, the one image loader of data preparation, training
and inference.
"""

import glob
import os
from pathlib import Path

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def find_images(inputs, extensions=IMAGE_EXTENSIONS):
    """Expand files, folders (searched recursively) and glob patterns into image paths.

    Returns `(paths, problems)`: `Path`s in a stable order without duplicates, and `(input, reason)` for each input
    that matched nothing. Files named directly are always taken, whatever their extension.
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
            found = sorted(p for p in Path(item).rglob("*") if p.is_file() and p.suffix.lower() in extensions)
            if not found:
                problems.append((item, f"folder holds no image files ({', '.join(sorted(extensions))})"))
            for path in found:
                add(path)
        elif glob.has_magic(item):
            matches = glob.glob(item, recursive=True)
            found = sorted(p for p in matches if os.path.isfile(p) and Path(p).suffix.lower() in extensions)
            if not found:
                problems.append((item, "pattern matches no image files"))
            for path in found:
                add(path)
        else:
            problems.append((item, "no such file or folder"))
    return paths, problems
