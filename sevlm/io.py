"""Writing files without losing anyone's: the one file-writing layer of every SEVLM tool.

- `replace_file` / `write_text_atomic` / `write_json_atomic`: a file is replaced only by a complete new one, with the
  permissions a plain `open()` would give it (the umask's, or those of the file it replaces).
- `check_new_file`: a single output file (`--output`) may not replace an existing file unless asked, nor a file that
  belongs to a tool's folder (an index's `index_config.json`), nor be a folder.
- `staged_output` / `OutputFiles`: a folder of outputs (an evaluation, a prepared corpus, a Hub folder, cards, a
  gallery). Each folder a tool writes into holds a record, `.sevlm-output.json`, of the entries it wrote and which
  kind of output owns each. A later run with overwrite replaces only the entries its own kind recorded; everything
  else in the folder stays, and an output whose name is taken by something else is an error that names it.
- `check_outside_input_folders`: an output folder may not be, or be inside, an index, a model folder or the
  command's own inputs; `check_outside_tool_outputs`: nor inside an entry another tool's output folder records.
- `display_path`: any file name as printable text; `json_safe`: NaN -> null, numpy/torch scalars -> numbers.
"""

import contextlib
import hashlib
import json
import math
import os
import shutil
import tempfile
from pathlib import Path

OUTPUT_RECORD = ".sevlm-output.json"
RECORD_FORMAT = 1
SHOWN_NAMES = 8  # names listed in one error message


# ------------------------------------------------------------------------------------------------ names
def display_path(path):
    """`path` as text that can always be printed and written as UTF-8.

    On Linux a file name is bytes; Python keeps bytes that are not UTF-8 (old zip archives, Windows copies) as lone
    surrogates, which `print`, `json.dump` and CSV writers refuse. They are shown as `\\xNN` escapes instead.
    """
    return os.fsencode(os.fspath(path)).decode("utf-8", errors="backslashreplace")


def listed(names, limit=SHOWN_NAMES):
    """`a, b, c and 4 more` for messages."""
    names = [display_path(name) for name in names]
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


# ------------------------------------------------------------------------------------------------ modes
def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def new_file_mode():
    """What `open(path, "w")` gives a new file: 0o666 less the umask (0o644 under umask 022)."""
    return 0o666 & ~_umask()


def new_folder_mode():
    """What `mkdir` gives a new folder: 0o777 less the umask (0o755 under umask 022)."""
    return 0o777 & ~_umask()


def make_temporary_file(target, suffix=".tmp"):
    """A temporary file beside `target` (same file system, so that `os.replace` is atomic), with the permissions of
    the file it will replace or of a new file (`mkstemp` alone makes it owner-only)."""
    target = Path(target)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix, dir=target.parent)
    mode = os.stat(target).st_mode & 0o7777 if target.is_file() else new_file_mode()
    os.fchmod(descriptor, mode)
    return descriptor, Path(temporary)


def make_temporary_folder(target, suffix="staging"):
    """A folder beside `target` with a new folder's permissions (`mkdtemp` alone makes it owner-only)."""
    target = Path(target)
    folder = Path(tempfile.mkdtemp(prefix=f".{target.name}.{suffix}-", dir=target.parent))
    os.chmod(folder, new_folder_mode())
    return folder


def file_sha256(path):
    """The SHA-256 of a file's bytes (hex), read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def normal_modes(folder, suffixes=None):
    """Give the files and folders under `folder` (only the files ending in `suffixes`, when given) the permissions a
    plain `open()` / `mkdir` would: safetensors writes its files readable by their owner only (0600), so that a
    model, a classifier or an index written through it would be unreadable to the group and to a web server."""
    for root, folders, files in os.walk(folder):
        if suffixes is None:
            for name in folders:
                os.chmod(os.path.join(root, name), new_folder_mode())
        for name in files:
            if suffixes is None or name.endswith(tuple(suffixes)):
                os.chmod(os.path.join(root, name), new_file_mode())


# ----------------------------------------------------------------------------------------- single files
@contextlib.contextmanager
def replace_file(path, mode="w", encoding="utf-8", newline=None):
    """Write `path` through a temporary file in the same folder, moved into place only when the block succeeds.

    If the block raises, the temporary file is removed and an existing `path` stays as it was. The file gets the
    permissions of the file it replaces, or those of a new file under the umask.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = make_temporary_file(path)
    try:
        kwargs = {} if "b" in mode else {"encoding": encoding, "newline": newline}
        with open(descriptor, mode, **kwargs) as stream:
            yield stream
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_text_atomic(path, text):
    with replace_file(path) as stream:
        stream.write(text)
    return Path(path)


def write_json_atomic(path, data, indent=2):
    return write_text_atomic(path, json.dumps(json_safe(data), indent=indent, ensure_ascii=False) + "\n")


def check_writable(folder, what, shown=None):
    """Raise, before any work, when nothing can be written at `folder` (or, where it does not exist yet, in its
    nearest existing ancestor, where it would be made): a file in the way, no permission, a read-only file system.
    The check writes and removes a probe file, because permission bits say nothing for root or read-only mounts."""
    folder = Path(os.path.abspath(folder))
    shown = shown or display_path(folder)
    for ancestor in (folder, *folder.parents):
        if not ancestor.exists():
            continue
        if not ancestor.is_dir():
            raise NotADirectoryError(f"{what} {shown}: {display_path(ancestor)} is a file, not a folder.")
        try:
            descriptor, probe = tempfile.mkstemp(prefix=".sevlm-write-check.", dir=ancestor)
        except OSError as error:
            raise PermissionError(
                f"{what} {shown}: cannot write in {display_path(ancestor)} ({error.strerror or error}); choose another "
                "place."
            ) from error
        os.close(descriptor)
        os.unlink(probe)
        return


def check_new_file(path, overwrite=False, flag="--overwrite", what="--output"):
    """Refuse, before any work, to write the single output file `path` where it would destroy something:

    - a folder (or a path through a file) is an error;
    - an existing file is replaced only with `overwrite`;
    - a file recorded by a tool's output folder (say an index's `index_config.json`) is never replaced;
    - the folder must be writable.
    """
    path = Path(path)
    shown = display_path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{what} {shown} is a folder; give a file name (e.g. {display_path(path / 'out.jsonl')}).")
    parent = path.parent
    check_writable(parent, what, shown)
    owner = read_record(parent).get(path.name)
    if owner is not None:
        raise FileExistsError(
            f"{what} {shown} belongs to the {owner} in {display_path(parent)}; writing it would break that. "
            "Choose another file name."
        )
    if path.exists() and not overwrite:
        raise FileExistsError(f"{what} {shown} already exists. Pass {flag} to replace it, or choose another file name.")
    return path


# ----------------------------------------------------------------------------------------- output folders
def read_record(folder):
    """`{entry name: owner}` of a folder's output record (empty when it has none or it is unreadable)."""
    try:
        record = json.loads((Path(folder) / OUTPUT_RECORD).read_text(encoding="utf-8"))
        entries = record.get("entries", {})
    except (OSError, ValueError, AttributeError):
        return {}
    return {str(name): str(owner) for name, owner in entries.items()} if isinstance(entries, dict) else {}


def write_record(folder, entries):
    """Write a folder's output record (`{entry name: owner}`); no record when there is nothing to record."""
    path = Path(folder) / OUTPUT_RECORD
    if not entries:
        path.unlink(missing_ok=True)
        return
    write_json_atomic(path, {"format": RECORD_FORMAT, "entries": dict(sorted(entries.items()))})


def record_entries(folder, names, owner):
    """Add `names` (entries of `folder`) to its record as outputs of `owner`."""
    entries = read_record(folder)
    entries.update({name: owner for name in names})
    write_record(folder, entries)


def folder_entries(folder):
    """The entries of `folder` other than its record (empty for a missing folder)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(entry.name for entry in folder.iterdir() if entry.name != OUTPUT_RECORD)


def check_output_folder(target, owner, names=(), overwrite=False, flag="--overwrite", what="--output_dir"):
    """Raise before any work when writing the outputs `names` of `owner` into `target` would destroy something.

    - `target` must be a folder (or not exist yet);
    - outputs an earlier run of `owner` recorded there are replaced only with `overwrite`;
    - an entry of `names` that exists and was not recorded by `owner` is never replaced: the error names it.
    Everything else in the folder is left alone.
    """
    target = Path(target)
    shown = display_path(target)
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(f"{what} {shown} is a file, not a folder; choose another path.")
    check_writable(target, what, shown)
    record = read_record(target)
    present = set(folder_entries(target))
    ours = sorted(name for name, kind in record.items() if kind == owner and name in present)
    taken = sorted(name for name in names if name in present and record.get(name) != owner)
    if taken:
        raise FileExistsError(
            f"{what} {shown} already holds {listed(taken)}, which this {owner} did not write; refusing to replace "
            f"{'it' if len(taken) == 1 else 'them'} (even with {flag}). Choose another folder, or move "
            f"{'it' if len(taken) == 1 else 'them'} away."
        )
    if ours and not overwrite:
        raise FileExistsError(
            f"{what} {shown} holds an earlier {owner} ({listed(ours)}). Pass {flag} to replace it (only those files are "
            "replaced, once the new ones are complete; anything else in the folder stays), or choose another folder."
        )
    return target


@contextlib.contextmanager
def staged_output(target, owner, names=(), overwrite=False, flag="--overwrite", what="--output_dir"):
    """Build a folder of outputs beside `target` and move them in only when the `with` block succeeds.

        with staged_output(args.output_dir, "evaluation", OUTPUT_FILES, args.overwrite, "--overwrite") as staging:
            ...write every output into `staging`...

    `check_output_folder` runs before the block (and again before the move). Then:
    - a new or empty `target` is replaced by the staging folder in one rename;
    - otherwise each new entry is moved in, the entries the earlier run of `owner` recorded and this run did not
      write are removed, and everything else stays;
    - the record lists what `owner` wrote. If the block fails, `target` is untouched.
    A `target` that is a symbolic link keeps the link: the folder it points to receives the outputs.
    """
    target = Path(target)
    real = Path(os.path.realpath(target)) if target.is_symlink() else target
    check_output_folder(real, owner, names, overwrite, flag, what)
    real.parent.mkdir(parents=True, exist_ok=True)
    staging = make_temporary_folder(real)
    try:
        yield staging
        check_output_folder(real, owner, folder_entries(staging), overwrite, flag, what)
        normal_modes(staging, suffixes=(".safetensors",))
        move_outputs_in(staging, real, owner)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def move_outputs_in(staging, target, owner):
    """Move every entry of `staging` into `target` as outputs of `owner` (see `staged_output`)."""
    staging, target = Path(staging), Path(target)
    written = folder_entries(staging)
    record = read_record(target)
    earlier = {name for name, kind in record.items() if kind == owner}
    others = {name: kind for name, kind in record.items() if kind != owner}
    if not folder_entries(target):
        write_record(staging, {**others, **{name: owner for name in written}})
        if target.exists():  # empty but for a record of entries that are gone
            shutil.rmtree(target)
        os.replace(staging, target)
        return target
    # A shared folder: the old outputs of `owner` go aside first, so that a failure can put them back.
    aside = make_temporary_folder(target, "old")
    moved = []
    try:
        for name in sorted(earlier & set(folder_entries(target))):
            os.replace(target / name, aside / name)
            moved.append(name)
        for name in written:
            os.replace(staging / name, target / name)
    except BaseException:
        for name in moved:
            if not (target / name).exists():
                os.replace(aside / name, target / name)
        raise
    write_record(target, {**others, **{name: owner for name in written}})
    shutil.rmtree(aside, ignore_errors=True)
    return target


class OutputFiles:
    """Files written one by one into a folder that may hold other files (cards beside a user's pictures, a gallery).

        outputs = OutputFiles(args.cards, "card folder", overwrite=args.overwrite, flag="--overwrite")
        outputs.check(planned_names)              # before any work: nothing of anyone else's is in the way
        with outputs.open(name, "wb") as stream: ...
        outputs.close()                           # records what was written

    A file is replaced only if an earlier run of the same kind recorded it and `overwrite` is set; the record is
    updated as files are written, so that an interrupted run's files are known to the next one.
    """

    def __init__(self, folder, owner, overwrite=False, flag="--overwrite", what="--output_dir"):
        self.folder, self.owner, self.overwrite, self.flag, self.what = Path(folder), owner, overwrite, flag, what
        self.written = []

    def check(self, names):
        check_output_folder(self.folder, self.owner, names, self.overwrite, self.flag, self.what)
        self.folder.mkdir(parents=True, exist_ok=True)
        if not os.access(self.folder, os.W_OK | os.X_OK):
            raise PermissionError(f"{self.what} {display_path(self.folder)}: cannot write there; choose another folder.")
        return self

    def path(self, name):
        return self.folder / name

    @contextlib.contextmanager
    def open(self, name, mode="w", **kwargs):
        with replace_file(self.folder / name, mode, **kwargs) as stream:
            yield stream
        self.written.append(name)
        if len(self.written) % 50 == 1:
            self.close()

    def close(self):
        """Record the files written so far."""
        if self.written:
            record_entries(self.folder, self.written, self.owner)
        return self.written


# ------------------------------------------------------------------------------------------ input folders
INDEX_CONFIG_FILE = "index_config.json"  # the file that makes a folder an emotion index
MODEL_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")


def input_folder_kind(folder):
    """What a tool reads `folder` as, whole: "an emotion index" (its `index_config.json`), "a model folder"
    (`config.json` with weights), else None."""
    folder = Path(folder)
    if (folder / INDEX_CONFIG_FILE).is_file():
        return "an emotion index"
    if (folder / "config.json").is_file() and any((folder / name).is_file() for name in MODEL_WEIGHT_FILES):
        return "a model folder"
    return None


def check_outside_input_folders(path, what, inputs=()):
    """Refuse an output folder `path` that is, or is inside, a folder tools read as a whole (an emotion index, a model
    folder) or one of `inputs`, the command's own sources as `(flag, folder)` pairs: writing there would mix the
    outputs into what they were made from."""
    real = Path(os.path.realpath(path))
    shown = display_path(path)
    for flag, folder in inputs:
        if folder is None or not os.path.isdir(folder):
            continue
        source = Path(os.path.realpath(folder))
        if real == source or source in real.parents:
            where = "is" if real == source else "is inside"
            raise ValueError(f"{what} {shown} {where} {flag} {display_path(folder)}, which it is made from; choose another folder.")
    for folder in (real, *real.parents):
        kind = input_folder_kind(folder)
        if kind is not None:
            where = "is" if folder == real else f"is inside {display_path(folder)}, which is"
            raise ValueError(f"{what} {shown} {where} {kind}; writing there would mix other files into it. Choose another folder.")
    return Path(path)


def check_outside_tool_outputs(path, what, owner=None):
    """Refuse a path at or inside an entry that another tool's output folder records (an index's `parts/`, its
    `index_config.json`): writing there would break that output. `owner`: the kind of output being written, which
    may write inside its own entries."""
    path = Path(os.path.abspath(path))
    for inner in (path, *path.parents):
        if inner.parent == inner:
            break
        kind = read_record(inner.parent).get(inner.name)
        if kind is not None and kind != owner:
            where = "" if inner == path else f" is inside {display_path(inner)}, which"
            raise FileExistsError(
                f"{what} {display_path(path)}{where} belongs to the {kind} in {display_path(inner.parent)}; writing there "
                "would break it. Choose another place."
            )
    return path


# --------------------------------------------------------------------------------------------------- csv
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value):
    """A CSV cell that a spreadsheet shows as text, never runs as a formula: text starting with `=`, `+`, `-`, `@`, a
    tab or a carriage return (a file named `=HYPERLINK(...).jpg`) gets a leading `'` (OWASP's advice). Numbers and
    other values pass unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


# -------------------------------------------------------------------------------------------------- json
def json_safe(value):
    """NaN / inf -> None, numpy and torch scalars -> Python numbers, tuples -> lists, recursively."""
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except (TypeError, ValueError):
            return value
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
