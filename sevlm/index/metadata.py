"""What a collection knows about its works besides their pictures: artist, title, date, style, room, any column.

An index can carry one row of metadata per work, read from a CSV file (`sevlm-index ... --metadata works.csv
--id_column file`) or from the columns of a prepared corpus (`art_style`, `painting`, any other column of single
values). It is kept beside the index as `metadata-NNNNN.parquet`: the work's `id` and every value as text, as a
spreadsheet gives it; `index_config.json` names the file and its columns. Search filters on it (`--where
"artist=Claude Monet"`), and galleries, hit files and the web app show it.

Which work a CSV row describes: its id cell is compared with the works' ids (for files: their absolute paths), then
read as a path relative to the CSV's folder, then to the current folder, then as a file name, with or without its
extension, that only one work has. Rows that match no work, and works without a row, are counted and named.

How values compare (`Condition`s, see `sevlm.index.query`): when the value searched for is a number, values that are
numbers compare as numbers (`date>=1900`; `1900` = `1900.0`); other values are compared as text by the name rule of
`sevlm.names` (case, Unicode form, `_` and extra spaces do not matter), also for `<` and `>` (alphabetical order). A
value that is not a number takes no part in `<`, `<=`, `>`, `>=` with a number: the search says how many were left out.
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
    the first of `id_columns` the file has. Errors name the file, the line and what to do."""
    from sevlm.names import check_distinct, clean_name, match_emotion

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
    reader = csv.reader(io.StringIO(text), dialect)
    header = next(reader, None)
    if not header or not any(cell.strip() for cell in header):
        raise ValueError(f"--metadata {shown} is empty; its first line names the columns (e.g. file,artist,title,date).")
    header = [clean_name(cell) for cell in header]
    if not all(header):
        raise ValueError(f"--metadata {shown}: column {header.index('') + 1} of the first line has no name; name every column.")
    check_distinct(header, f"The first line of --metadata {shown}")
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
    rows, lines, without_id = {}, {}, []
    for cells in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) > len(header):
            raise ValueError(f"--metadata {shown}, line {line}: {len(cells)} cells, the first line names {len(header)} columns; quote cells that hold a {dialect.delimiter!r}.")
        cells = [cell.strip() for cell in cells] + [""] * (len(header) - len(cells))
        work = unicodedata.normalize("NFC", cells[position])
        if not work:
            without_id.append(line)
            continue
        if work in rows:
            raise ValueError(f"--metadata {shown} describes {work!r} twice (lines {lines[work]} and {line}); keep one row per work.")
        rows[work] = {name: cells[number] or None for number, name in enumerate(header) if name != id_name}
        lines[work] = line
    return MetadataSource(rows, columns, shown, lines, base_dir=str(path.parent.resolve()), rows_without_id=without_id)


def corpus_metadata(dataset, id_column, source="the corpus"):
    """The columns of single values of a corpus split (`art_style`, `painting`, any other text, number or class
    column; not the image, the id, nor lists such as the annotations) as a `MetadataSource`, or None when it has
    none."""
    from datasets import ClassLabel, Value

    columns = [
        name for name, feature in dataset.features.items()
        if name != id_column and (isinstance(feature, ClassLabel) or (isinstance(feature, Value) and feature.dtype != "binary"))
    ]  # fmt: skip
    if not columns:
        return None
    table = dataset.select_columns([id_column, *columns]).with_format(None)[:]
    labels = {name: dataset.features[name] for name in columns if isinstance(dataset.features[name], ClassLabel)}
    rows = {}
    for number, work in enumerate(table[id_column]):
        rows[str(work)] = {name: as_text(labels[name].int2str(table[name][number]) if name in labels and table[name][number] is not None else table[name][number]) for name in columns}
    return MetadataSource(rows, columns, source, exact=True)


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
def match_ids(values, ids, base_dir=None, exact=False):
    """`{value: id or None}`: the work each value names (see the module docstring). `ids`: the works' ids."""
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
        work = nfc.get(key)
        if work is None and not exact:
            candidates = [os.path.join(base_dir, key)] if base_dir and not os.path.isabs(key) else []
            for candidate in candidates + [key]:
                work = nfc.get(display_path(os.path.abspath(candidate)))
                if work is not None:
                    break
            for table, part in ((by_name, os.path.basename(key)), (by_stem, os.path.splitext(os.path.basename(key))[0])):
                if work is None and len(table.get(part, ())) == 1:
                    work = table[part][0]
        found[value] = work
    return found


def merge_metadata(previous, sources, ids):
    """The metadata table of an index whose works are `ids` (in row order): the `previous` table's rows (a pyarrow
    table with `id` and the columns, or None) for works still there, with each of `sources` (`MetadataSource`s, in
    order) over them: a work's values for a source's columns are the source's, its other values stay.

    Sets each source's `report`: `{"source", "columns", "rows", "matched", "unmatched": ["value (line n)"],
    "rows_without_id": [lines]}`. Returns `(table or None, columns, ids of the works without metadata)`."""
    import pyarrow as pa

    from sevlm.names import match_emotion

    stored, columns = {}, []
    if previous is not None:
        columns = [name for name in previous.column_names if name != "id"]
        for work, *values in zip(*(previous.column(name).to_pylist() for name in ["id", *columns])):
            stored[work] = dict(zip(columns, values))
    for source in sources or ():
        renamed = {name: match_emotion(name, columns) or name for name in source.columns}  # "Artist" is "artist"
        columns += [name for name in renamed.values() if name not in columns]
        matched = match_ids(list(source.rows), ids, source.base_dir, source.exact)
        owners = {}
        for value, work in matched.items():
            if work is None:
                continue
            if work in owners:
                raise ValueError(
                    f"{source.source}: {owners[work]!r} (line {source.lines.get(owners[work])}) and {value!r} (line "
                    f"{source.lines.get(value)}) are both the work {display_path(work)}; keep one row per work."
                )
            owners[work] = value
            stored.setdefault(work, {}).update({renamed[name]: text for name, text in source.rows[value].items()})
        source.report = {
            "source": source.source,
            "columns": list(source.columns),
            "rows": len(source.rows),
            "matched": len(owners),
            "unmatched": [f"{value} (line {source.lines[value]})" if value in source.lines else value for value, work in matched.items() if work is None],
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


__all__ = [
    "MetadataSource",
    "MetadataView",
    "corpus_metadata",
    "match_ids",
    "merge_metadata",
    "read_metadata",
    "read_metadata_csv",
    "write_metadata",
]
