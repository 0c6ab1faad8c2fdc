"""What a collection knows about its works besides their pictures: artist, title, date, style, room, any column.

An index can carry one row of metadata per work, read from a CSV file (`sevlm-index ... --metadata works.csv
--id_column file`) or from the columns of a prepared corpus (`art_style`, `painting`, any other column of single
values). It is kept beside the index as `metadata-NNNNN.parquet`: the work's `id` and every value as text, as a
spreadsheet gives it; `index_config.json` names the file and its columns. Search filters on it (`--where
"artist=Claude Monet"`), and galleries, hit files and the web app show it.

Which work a CSV row describes: its id cell is compared with the works' ids (for files: their absolute paths), then
read as a path relative to the CSV's folder, then to the current folder, then as a file name, with or without its
extension, that only one work has. A work a row names by its path is never taken by a row that gives only its file
name. Rows that match no work, rows whose file name is that of several works (named with them), rows matched by
their file name only, and works without a row are counted and named.

A CSV is read strictly: every row has as many cells as the first line names columns, a quote opened is closed, and a
column named `id` (in any case: the index keeps the works' ids under that name) is refused, as is a column given
twice; each error names the file, the line and what to do. A corpus's own column named `id` is kept as `metadata_id`.

How values compare (`Condition`s, see `sevlm.index.query`): when the value searched for is a number, values that are
numbers compare as numbers (`date>=1900`; `1900` = `1900.0`); other values are compared as text by the name rule of
`sevlm.names` (case, Unicode form, `_` and extra spaces do not matter), also for `<` and `>`: in alphabetical order,
character by character (`'950' > '1900s'`), which the search says in a note. A value that is not a number takes no
part in `<`, `<=`, `>`, `>=` with a number: the search says how many were left out.
A work without a value is equal to nothing (`artist=` with nothing after `=` finds the works without one).
"""

import csv
import io
import math
import operator
import os
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sevlm.io import display_path, listed, replace_file

METADATA_FILE = re.compile(r"metadata-\d{5}\.parquet")
# Columns that name a work's file or id, tried in this order when no id column is given.
ID_COLUMNS = ("file", "file_name", "filename", "path", "image", "id", "painting_id")
SNIFFED_DELIMITERS = ",;\t|"
SHOWN_VALUES = 5  # values quoted in a note
# Names the index keeps for its own fields (the works' ids in the metadata table), compared by the name rule: a
# metadata column may not take them.
RESERVED_COLUMNS = ("id",)
RESERVED_PREFIX = "metadata_"  # a corpus's column of a reserved name is kept under this prefix
CELL_LIMIT = 1 << 24  # characters in one CSV cell (Python's csv module stops at 131072 by default)
ORDERINGS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}  # on numpy arrays and on text


# ------------------------------------------------------------------------------------------------ sources
@dataclass
class MetadataSource:
    """Metadata rows to store with an index: `rows` maps each row's id cell (as written) to `{column: text or
    None}`; `lines` the id cell to its line in the file; `base_dir` is where relative paths start (the CSV's folder);
    `exact`: ids are matched as they are (a corpus's ids), not as paths. After `merge_metadata`, `report` says how
    the rows matched the works."""

    rows: dict
    columns: list
    source: str
    lines: dict = field(default_factory=dict)
    base_dir: str = None
    exact: bool = False
    rows_without_id: list = field(default_factory=list)
    report: dict = None


def read_metadata_csv(path, id_column=None, id_columns=ID_COLUMNS):
    """A metadata CSV (UTF-8, with or without a BOM; comma, semicolon or tab separated, as spreadsheets save them)
    as a `MetadataSource`. `id_column`: the column naming each work's file or id (matched by the name rule); default:
    the first of `id_columns` the file has. Errors name the file, the line and what to do: a row with more or fewer
    cells than the first line names columns, a quote never closed, a cell too long, a column given twice or named
    as one of the index's own fields (`RESERVED_COLUMNS`)."""
    from sevlm.names import clean_name, match_emotion

    path = Path(path)
    shown = display_path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--metadata {shown}: no such file." if not path.is_dir() else f"--metadata {shown} is a folder; give a CSV file.")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError(f"--metadata {shown} is not UTF-8 text ({error.reason} at byte {error.start}); save it as CSV UTF-8.") from None
    try:
        dialect = csv.Sniffer().sniff(text[:65536], delimiters=SNIFFED_DELIMITERS)
    except csv.Error:
        dialect = csv.excel
    limit = csv.field_size_limit()
    csv.field_size_limit(max(limit, CELL_LIMIT))
    try:
        records = list(csv_records(text, dialect, shown))
    finally:
        csv.field_size_limit(limit)
    header = records[0][1] if records else None
    if not header or not any(cell.strip() for cell in header):
        raise ValueError(f"--metadata {shown} is empty; its first line names the columns (e.g. file,artist,title,date).")
    header = [clean_name(cell) for cell in header]
    if not all(header):
        raise ValueError(f"--metadata {shown}: column {header.index('') + 1} of the first line has no name; name every column.")
    check_header(header, f"--metadata {shown}")
    if id_column:
        id_name = match_emotion(id_column, header)
        if id_name is None:
            raise ValueError(f"--metadata {shown} has the columns {', '.join(header)}, not {id_column!r}; pass --id_column with the column naming each work's file or id.")
    else:
        id_name = next((name for candidate in id_columns for name in header if match_emotion(candidate, [name])), None)
        if id_name is None:
            raise ValueError(f"--metadata {shown} has no column naming the works ({', '.join(dict.fromkeys(id_columns))}); pass --id_column with the one that does (its columns: {', '.join(header)}).")
    position = header.index(id_name)
    columns = [name for name in header if name != id_name]
    reserved = [name for name in columns if reserved_column(name)]
    if reserved:
        raise ValueError(
            f"--metadata {shown}: the column {reserved[0]!r} of the first line has a name the index keeps for the works' "
            f"ids ({', '.join(RESERVED_COLUMNS)}, in any case). Rename it in the first line (e.g. {RESERVED_PREFIX}{reserved[0]}), "
            f"or, if it names each work's file or id, pass --id_column {reserved[0]}."
        )
    rows, lines, without_id = {}, {}, []
    for line, cells in records[1:]:
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(header):
            fewer = len(cells) < len(header)
            hint = (
                "give every row a cell per column (empty cells too: a,,c), or check for a quote that is not closed on an earlier line"
                if fewer
                else f"quote cells that hold a {dialect.delimiter!r}"
            )
            raise ValueError(f"--metadata {shown}, line {line}: {len(cells)} cell{'s' if len(cells) != 1 else ''}, the first line names {len(header)} columns; {hint}.")
        cells = [cell.strip() for cell in cells]
        work = unicodedata.normalize("NFC", cells[position])
        if not work:
            without_id.append(line)
            continue
        if work in rows:
            raise ValueError(f"--metadata {shown} describes {work!r} twice (lines {lines[work]} and {line}); keep one row per work.")
        rows[work] = {name: cells[number] or None for number, name in enumerate(header) if name != id_name}
        lines[work] = line
    return MetadataSource(rows, columns, shown, lines, base_dir=str(path.parent.resolve()), rows_without_id=without_id)


def csv_records(text, dialect, shown):
    """`(line, cells)` of each record of a CSV text, `line` where the record starts; a quote never closed, a cell
    longer than `csv.field_size_limit()` or other broken CSV is an error naming the file and the line."""
    reader = csv.reader(io.StringIO(text), dialect, strict=True)
    start = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            if "field larger than field limit" in str(error):
                problem = f"a cell longer than {csv.field_size_limit()} characters starts on or after this line; shorten it"
            elif "unexpected end of data" in str(error):
                problem = "a quote (\") opened in this row is never closed, so the rest of the file would be one cell; close it, or double a quote inside a cell (\"\")"
            else:
                problem = f"not valid CSV ({error}); quote cells that hold quotes, delimiters or line breaks, doubling a quote inside a cell (\"\")"
            raise ValueError(f"--metadata {shown}, line {start}: {problem}.") from None
        yield start, cells
        start = reader.line_num + 1


def check_header(header, where):
    """Refuse a column given twice (by the name rule: "Artist" and "artist" are one column)."""
    from sevlm.names import emotion_key

    seen = {}
    for number, name in enumerate(header, 1):
        key = emotion_key(name)
        if key in seen:
            raise ValueError(
                f"{where}: the column {name!r} appears twice in the first line (columns {seen[key][0]} and {number}: "
                f"{seen[key][1]!r} and {name!r}; names are compared ignoring case, Unicode form, '_' vs ' ' and extra "
                "spaces). Rename or remove one."
            )
        seen[key] = (number, name)


def reserved_column(name):
    """Whether a column name is one the index keeps for its own fields (`RESERVED_COLUMNS`, by the name rule)."""
    from sevlm.names import match_emotion

    return match_emotion(name, RESERVED_COLUMNS) is not None


def safe_column(name, taken=()):
    """A column name the metadata table can hold: `name`, or with `RESERVED_PREFIX` (repeated) while it is reserved
    or taken."""
    from sevlm.names import match_emotion

    while reserved_column(name) or match_emotion(name, taken) is not None:
        name = RESERVED_PREFIX + name
    return name


def corpus_metadata(dataset, id_column, source="the corpus"):
    """The columns of single values of a corpus split (`art_style`, `painting`, any other text, number or class
    column; not the image, the id, nor lists such as the annotations) as a `MetadataSource`, or None when it has
    none. A column named as one of the index's own fields (`id`) is kept as `metadata_id`."""
    from datasets import ClassLabel, Value

    columns = [
        name for name, feature in dataset.features.items()
        if name != id_column and (isinstance(feature, ClassLabel) or (isinstance(feature, Value) and feature.dtype != "binary"))
    ]  # fmt: skip
    if not columns:
        return None
    table = dataset.select_columns([id_column, *columns]).with_format(None)[:]
    labels = {name: dataset.features[name] for name in columns if isinstance(dataset.features[name], ClassLabel)}
    stored = {}  # a column named as one of the index's own fields (`id`) is kept under a prefix
    for name in columns:
        stored[name] = safe_column(name, [other for other in columns if other != name] + list(stored.values()))
    rows = {}
    for number, work in enumerate(table[id_column]):
        rows[str(work)] = {stored[name]: as_text(labels[name].int2str(table[name][number]) if name in labels and table[name][number] is not None else table[name][number]) for name in columns}
    return MetadataSource(rows, list(stored.values()), source, exact=True)


def as_text(value):
    """A metadata value as stored: text, numbers without a needless `.0`, None for nothing."""
    if value is None:
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return str(int(value)) if value.is_integer() else repr(value)
    text = str(value).strip()
    return text or None


# ------------------------------------------------------------------------------------------------ matching
EXACT, BY_PATH, BY_NAME = "id", "path", "name"  # how a value named its work


def match_ids(values, ids, base_dir=None, exact=False):
    """`{value: id or None}`: the work each value names (see the module docstring). `ids`: the works' ids."""
    return {value: found.work for value, found in find_works(values, ids, base_dir, exact).items()}


class Found:
    """Which work a value names: `work` (its id, or None), `how` (`EXACT`: the id itself, `BY_PATH`: a path to it,
    `BY_NAME`: the file name (or stem) only one work has; None when no work), `candidates` (the ids of the works
    whose file name it is, when several have it)."""

    __slots__ = ("work", "how", "candidates")

    def __init__(self, work=None, how=None, candidates=()):
        self.work, self.how, self.candidates = work, how, list(candidates)


def find_works(values, ids, base_dir=None, exact=False):
    """`{value: Found}`: the work each value names (see the module docstring) and how."""
    nfc = {unicodedata.normalize("NFC", work): work for work in ids}
    by_name, by_stem = {}, {}
    if not exact:
        for key, work in nfc.items():
            name = os.path.basename(key)
            by_name.setdefault(name, []).append(work)
            by_stem.setdefault(os.path.splitext(name)[0], []).append(work)
    found = {}
    for value in values:
        key = unicodedata.normalize("NFC", str(value))
        if key in nfc:
            found[value] = Found(nfc[key], EXACT)
            continue
        found[value] = Found()
        if exact:
            continue
        candidates = [os.path.join(base_dir, key)] if base_dir and not os.path.isabs(key) else []
        for candidate in candidates + [key]:
            work = nfc.get(display_path(os.path.abspath(candidate)))
            if work is not None:
                found[value] = Found(work, BY_PATH)
                break
        else:
            for table, part in ((by_name, os.path.basename(key)), (by_stem, os.path.splitext(os.path.basename(key))[0])):
                works = table.get(part, ())
                if len(works) == 1:
                    found[value] = Found(works[0], BY_NAME)
                    break
                if len(works) > 1:
                    found[value] = Found(candidates=works)
                    break
    return found


def bare_file_name_of(value, work):
    """Whether `value` is just the file name of `work` (no folder given, the same extension): the common way of
    naming works in a curator's list, matched without a word. A folder that leads elsewhere or another extension is
    reported as matched by file name only."""
    key = unicodedata.normalize("NFC", str(value))
    return os.path.basename(key) == key and key == os.path.basename(unicodedata.normalize("NFC", work))


def merge_metadata(previous, sources, ids):
    """The metadata table of an index whose works are `ids` (in row order): the `previous` table's rows (a pyarrow
    table with `id` and the columns, or None) for works still there, with each of `sources` (`MetadataSource`s, in
    order) over them: a work's values for a source's columns are the source's, its other values stay. A work named
    by its id or path takes that row; a row naming it by its file name only is then left out (reported).

    Sets each source's `report`: `{"source", "columns", "rows", "matched", "unmatched": ["value (line n)"],
    "ambiguous": ["value (line n): id, id"], "by_name": ["value (line n) -> id"], "rows_without_id": [lines]}`.
    Returns `(table or None, columns, ids of the works without metadata)`."""
    import pyarrow as pa

    from sevlm.names import match_emotion

    stored, columns = {}, []
    if previous is not None:
        columns = [name for name in previous.column_names if name != "id"]
        for work, *values in zip(*(previous.column(name).to_pylist() for name in ["id", *columns])):
            stored[work] = dict(zip(columns, values))
    for source in sources or ():
        reserved = [name for name in source.columns if reserved_column(name)]
        if reserved:
            raise ValueError(f"{source.source}: the column {reserved[0]!r} has a name the index keeps for the works' ids ({', '.join(RESERVED_COLUMNS)}); rename it.")
        renamed = {name: match_emotion(name, columns) or name for name in source.columns}  # "Artist" is "artist"
        columns += [name for name in renamed.values() if name not in columns]
        matched = find_works(list(source.rows), ids, source.base_dir, source.exact)

        def at(value, lines=source.lines):
            return f"{value} (line {lines[value]})" if value in lines else str(value)

        owners, named_only, unmatched = {}, [], []
        for value, found in sorted(matched.items(), key=lambda item: item[1].how == BY_NAME):  # by id or path first
            work = found.work
            if work is None:
                continue
            if work in owners:
                if found.how == BY_NAME and matched[owners[work]].how != BY_NAME:
                    unmatched.append(f"{at(value)}: its file name is that of {display_path(work)}, which {at(owners[work])} names")
                    continue
                raise ValueError(
                    f"{source.source}: {owners[work]!r} (line {source.lines.get(owners[work])}) and {value!r} (line "
                    f"{source.lines.get(value)}) are both the work {display_path(work)}; keep one row per work."
                )
            owners[work] = value
            if found.how == BY_NAME and not bare_file_name_of(value, work):
                named_only.append(f"{at(value)} -> {display_path(work)}")
            stored.setdefault(work, {}).update({renamed[name]: text for name, text in source.rows[value].items()})
        source.report = {
            "source": source.source,
            "columns": list(source.columns),
            "rows": len(source.rows),
            "matched": len(owners),
            "unmatched": [at(value) for value, found in matched.items() if found.work is None and not found.candidates] + unmatched,
            "ambiguous": [f"{at(value)}: {', '.join(map(display_path, found.candidates))}" for value, found in matched.items() if found.candidates],
            "by_name": named_only,
            "rows_without_id": list(source.rows_without_id),
        }
    kept = [work for work in ids if work in stored]
    without = [work for work in ids if work not in stored]
    if not kept or not columns:
        return None, columns, list(ids)
    table = {"id": pa.array(kept, pa.string())}
    for name in columns:
        table[name] = pa.array([stored[work].get(name) for work in kept], pa.string())
    return pa.table(table), columns, without


def write_metadata(path, table):
    """Write a metadata table as Parquet, whole or not at all."""
    import pyarrow.parquet as pq

    with replace_file(path, "wb") as stream:
        pq.write_table(table, stream)
    return Path(path)


def read_metadata(path, columns):
    """The metadata table at `path` (`id` and `columns`, all text); a missing or damaged file is an error naming it."""
    import pyarrow.parquet as pq

    shown = display_path(path)
    if not Path(path).is_file():
        raise FileNotFoundError(f"{shown} is missing: the index is damaged. Attach the metadata again (sevlm-index --index ... --metadata works.csv) or rebuild the index.")
    try:
        table = pq.read_table(path)
    except Exception as error:  # pyarrow's ArrowInvalid, OSError
        raise ValueError(f"{shown} cannot be read ({type(error).__name__}: {error}). Attach the metadata again (sevlm-index --index ... --metadata works.csv).") from None
    if table.column_names != ["id", *columns]:
        raise ValueError(f"{shown} has the columns {table.column_names}, the index names {['id', *columns]}: the index is damaged. Attach the metadata again.")
    return table


# ------------------------------------------------------------------------------------------------ the view
class MetadataView:
    """The metadata of an index's works in the index's row order: `columns`, `row(n)` / `rows(numbers)` as dicts
    (None for values a work has not), and `mask(condition)` for searches."""

    def __init__(self, table, ids):
        import pyarrow.compute as pc

        self.columns = [name for name in table.column_names if name != "id"]
        positions = pc.index_in(ids, value_set=table.column("id"))
        self.table = table.select(self.columns).take(positions)  # null rows for works without metadata
        self.has_row = np.asarray(positions.is_valid().to_numpy(zero_copy_only=False), dtype=bool).reshape(len(self.table))
        self._values, self._keys, self._numbers = {}, {}, {}

    def __len__(self):
        return len(self.table)

    def values(self, column):
        """The column's values (text or None), one per work, as a numpy object array."""
        if column not in self._values:
            self._values[column] = np.asarray(self.table.column(column).to_pylist(), dtype=object)
        return self._values[column]

    def keys(self, column):
        """The column's values by the name rule (None for no value)."""
        if column not in self._keys:
            from sevlm.names import emotion_key

            self._keys[column] = np.asarray([None if value is None else emotion_key(value) for value in self.values(column)], dtype=object)
        return self._keys[column]

    def numbers(self, column):
        """The column's values as numbers (NaN where a value is not a finite number)."""
        if column not in self._numbers:
            self._numbers[column] = np.asarray([number_of(value) for value in self.values(column)], dtype=np.float64)
        return self._numbers[column]

    def rows(self, numbers):
        """`[{column: value}]` of rows `numbers`."""
        import pyarrow as pa

        picked = self.table.take(pa.array(np.asarray(numbers, dtype=np.int64)))
        return picked.to_pylist()

    def row(self, number):
        return self.rows([number])[0]

    def without(self):
        """Row numbers of the works that have no metadata row."""
        return np.flatnonzero(~self.has_row)

    def mask(self, condition):
        """`(mask, left_out)`: the works that meet a `Condition`, and how many works have a value that could not take
        part (not a number, compared with a number by `<`, `<=`, `>`, `>=`) with up to `SHOWN_VALUES` of them."""
        from sevlm.names import emotion_key

        keys = self.keys(condition.column)
        present = np.asarray([key is not None and key != "" for key in keys], dtype=bool)
        number = number_of(condition.value)
        wanted = emotion_key(condition.value)
        if condition.operator in ("=", "!="):
            if not wanted:
                equal = ~present
            else:
                equal = np.asarray([key == wanted for key in keys], dtype=bool)
                if number is not None:
                    equal |= self.numbers(condition.column) == number
            return (equal if condition.operator == "=" else ~equal), (0, [])
        compare = ORDERINGS[condition.operator]
        if number is not None:
            numbers = self.numbers(condition.column)
            with np.errstate(invalid="ignore"):
                passed = compare(numbers, number)  # NaN (not a number) compares False
            other = present & np.isnan(numbers)
            shown = list(dict.fromkeys(self.values(condition.column)[other].tolist()))[:SHOWN_VALUES]
            return passed, (int(other.sum()), shown)
        passed = np.asarray([key is not None and key != "" and bool(compare(key, wanted)) for key in keys], dtype=bool)
        return passed, (0, [])


def number_of(value):
    """A value as a finite number, or None (text such as 'c. 1890', 'nan' or 'inf' is not a number)."""
    if value is None:
        return None
    try:
        number = float(str(value).strip())
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def left_out_note(condition, count, examples):
    """`5 works whose date is not a number took no part in date>=1900 (c. 1890, 1890s)`."""
    if not count:
        return ""
    return f"{count} work(s) whose {condition.column} is not a number took no part in {condition} ({listed([repr(value) for value in examples])})."


def text_order_note(condition):
    """What an order comparison with a value that is not a number does (`title<M`): alphabetical order, said so."""
    if condition.operator not in ORDERINGS or number_of(condition.value) is not None:
        return ""
    return (
        f"{condition} compares text in alphabetical order, ignoring case, because {condition.value!r} is not a number "
        f"(in that order '950' comes after '1900s'); write a number after {condition.operator} to compare numbers."
    )


__all__ = [
    "MetadataSource",
    "MetadataView",
    "corpus_metadata",
    "find_works",
    "match_ids",
    "merge_metadata",
    "read_metadata",
    "read_metadata_csv",
    "write_metadata",
]
