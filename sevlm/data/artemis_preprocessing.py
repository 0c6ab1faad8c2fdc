"""Run ArtEmis's own `preprocess_artemis_data.py` (github.com/optas/artemis), unmodified, on today's Python.

The script was written for pandas 0.25, scikit-learn 0.21 and NLTK 3.4. With current releases it stops three times;
`compatibility_shims` changes the environment it runs in, never its code:

- `infer_string`: pandas 3 stores strings as Arrow arrays, and scikit-learn's `train_test_split` cannot index the
  array of painting ids that `make_train_test_val_splits` passes it. The shim turns pandas' `future.infer_string`
  off, so `Series.unique()` gives a NumPy object array again (sorted the same way, by code point).
- `concat_axis`: `pd.concat([df, high_coverage_df], 0)` passes the axis by position, which pandas 2 removed. The shim
  accepts the positional arguments of pandas 1 (objs, axis, join, ignore_index, ...) and passes them by name.
- `word_tokenize`: NLTK 3.9 loads the Punkt sentence model from `punkt_tab`, which the script's own check does not
  fetch (it looks for `punkt`) and which cannot be downloaded offline. `nltk.word_tokenize(text)` is Punkt's
  sentences, each split by NLTK's Treebank-style word tokenizer. Punkt only breaks a sentence at `.`, `?` or `!`
  (`PunktLanguageVars.sent_end_chars`), and ArtEmis's `pre_process_text` maps these (with `,:;/\\-~*_=[]{}$^@|%#<>`
  and two dashes) to spaces before it tokenizes, so each utterance is one sentence and Punkt changes nothing. The
  shim tokenizes the whole text as one sentence (`word_tokenize(text, preserve_line=True)`) and answers the script's
  `nltk.download('punkt')` without going to the network.

`run_artemis_preprocessing` checks the repository, the dependencies and the output folder, runs the script into a
staging folder beside the output and moves its files into place only once it has finished, and writes
`run_artemis_preprocessing.json`: the package versions, the shims, the script's arguments and the rows per split.

This module imports only the standard library at load time, so that it runs in ArtEmis's own environment.
"""

import contextlib
import csv
import importlib
import importlib.metadata
import platform
import re
import runpy
import subprocess
import sys
import time
import warnings
from collections import Counter
from pathlib import Path

from sevlm.io import display_path, file_sha256, staged_output, write_json_atomic

SCRIPT = Path("artemis") / "scripts" / "preprocess_artemis_data.py"
# The two resource files the script reads from its own repository (spell checking: SymSpell's word frequencies and
# the words of GloVe 6B). Both are in optas/artemis; nothing is downloaded.
RESOURCES = (Path("artemis") / "data" / "symspell_frequency_dictionary_en_82_765.txt",
             Path("artemis") / "data" / "glove.6B.100d.vocabulary.txt")
PREPROCESSED_CSV = "artemis_preprocessed.csv"
SCRIPT_OUTPUTS = (PREPROCESSED_CSV, "vocabulary.pkl", "config.json.txt", "artemis_gt_references_grouped.pkl")
RUN_RECORD = "run_artemis_preprocessing.json"
# sha256 of preprocess_artemis_data.py as optas/artemis has it (last changed in 8229b61, the same at d84b719, April
# 2021): a run records whether the script it ran is that one.
UPSTREAM_SCRIPT_SHA256 = {
    "b177e98c62b9fae60da18876fe7e22e8b85ba31e9704a0f0c9f4e90acb8d9d50": "optas/artemis 8229b61 (unchanged at d84b719)",
}

SHIMS = {
    "infer_string": "pandas option future.infer_string off: string columns are NumPy object arrays, which "
                    "scikit-learn's train_test_split can index",
    "concat_axis": "pandas.concat accepts pandas 1's positional arguments (objs, axis, join, ignore_index, ...)",
    "word_tokenize": "nltk.word_tokenize tokenizes each text as one sentence (no Punkt model; the script has already "
                     "mapped . ? ! to spaces); nltk.download('punkt') is answered without the network",
}

# Modules the script and the parts of the `artemis` package it imports need, and the pip package of each.
DEPENDENCIES = {
    "numpy": "numpy",
    "pandas": "pandas",
    "sklearn": "scikit-learn",
    "nltk": "nltk",
    "symspellpy": "symspellpy",
    "torch": "torch",
    "dask.dataframe": "dask[dataframe]",
    "IPython": "ipython",
    "PIL": "pillow",
    "six": "six",
}
PIP_NAMES = {module.split(".")[0]: package for module, package in DEPENDENCIES.items()}
# Distributions whose versions a run records (pyarrow: pandas' string storage; scipy: under scikit-learn).
RECORDED_PACKAGES = ("pandas", "numpy", "scikit-learn", "scipy", "nltk", "symspellpy", "torch", "dask", "pyarrow",
                     "ipython", "pillow", "six")

# pandas 1's positional parameters of `concat`, in order (pandas 2 made all but `objs` keyword-only).
PANDAS1_CONCAT_PARAMETERS = ("axis", "join", "ignore_index", "keys", "levels", "names", "verify_integrity", "sort",
                             "copy")
# The script's own flags whose values `--preprocess-for-deep-nets True` replaces with the paper's (95, 5, 5, 41).
DEEP_NET_OVERRIDES = ("too_long_utter_prc", "too_short_len", "min_word_freq", "too_high_repetition")


# NLTK 3.10.1 changed its word tokenizer: an apostrophe that opens a word ('em, 'tis, the quote of 'two words') is
# split off as its own token. NLTK 3.4.5 (ArtEmis's pin) to 3.10.0 kept it on the word. Not a shim's doing: the same
# with or without one.
NLTK_APOSTROPHE_CHANGE = (3, 10, 1)


def nltk_tokenizer_warning():
    """A warning when the installed NLTK tokenizes differently from the NLTK ArtEmis used (None otherwise)."""
    try:
        import nltk
    except ImportError:
        return None
    if version_tuple(nltk.__version__) < NLTK_APOSTROPHE_CHANGE:
        return None
    return (f"nltk {nltk.__version__} splits an apostrophe that opens a word ('em, 'tis, 'two words') off as its own "
            "token; NLTK 3.4.5 (ArtEmis's pin) to 3.10.0 kept it on the word, so utterances with one get other "
            "tokens than ArtEmis's own file. For ArtEmis's tokens: pip install 'nltk<3.10.1'.")


def version_tuple(text):
    """'3.10.1' -> (3, 10, 1); a part with a suffix ('9rc1', 'post1') ends the numbers after its leading digits."""
    numbers = []
    for part in text.split("."):
        digits = re.match(r"\d*", part).group()
        if not digits:
            break
        numbers.append(int(digits))
        if digits != part:
            break
    return tuple(numbers)


class ArtemisPreprocessingError(Exception):
    """A problem with the inputs or the environment, said in words that name what to do."""


# ----------------------------------------------------------------------------------------------------- shims
def concat_with_positional_axis(objs, *args, **kwargs):
    """`pandas.concat` that also takes pandas 1's positional arguments: `concat(frames, 0)` -> axis=0."""
    import pandas

    if len(args) > len(PANDAS1_CONCAT_PARAMETERS):
        raise TypeError(f"concat() takes at most {len(PANDAS1_CONCAT_PARAMETERS) + 1} positional arguments")
    for name, value in zip(PANDAS1_CONCAT_PARAMETERS, args):
        if name in kwargs:
            raise TypeError(f"concat() got multiple values for argument {name!r}")
        kwargs[name] = value
    return ORIGINALS.get("pandas.concat", pandas.concat)(objs, **kwargs)


def word_tokenize_without_punkt(text, language="english", preserve_line=False):
    """`nltk.word_tokenize` with the whole text as one sentence: equal to it on text without `.`, `?` and `!`, the
    only characters at which Punkt can end a sentence. Module-level, so that a process pool can pickle it."""
    from nltk.tokenize import word_tokenize

    return word_tokenize(text, language, preserve_line=True)


def download_without_punkt(info_or_id=None, *args, **kwargs):
    """`nltk.download` that answers requests for the Punkt models without the network (the tokenizer in use needs
    none) and passes anything else on."""
    if info_or_id in ("punkt", "punkt_tab"):
        print(f"[run_artemis_preprocessing] nltk.download({info_or_id!r}) skipped: the word tokenizer in use needs "
              "no Punkt model.")
        return True
    return ORIGINALS["nltk.download"](info_or_id, *args, **kwargs)


ORIGINALS = {}  # what the shims replaced, while they are in place


def pandas_string_option_problem():
    """Why the `infer_string` shim cannot work with the installed pandas (None when it can or is not needed)."""
    import pandas

    try:
        pandas.get_option("future.infer_string")
    except KeyError:  # pandas' OptionError: the option is absent
        major = int(pandas.__version__.split(".")[0])
        if major >= 3:
            return (f"pandas {pandas.__version__} can no longer turn string inference off (the option "
                    "future.infer_string is gone), and ArtEmis's split fails without that: install pandas<4 "
                    "(pip install 'pandas<4').")
    return None


@contextlib.contextmanager
def compatibility_shims(names=tuple(SHIMS)):
    """Apply the shims `names` (keys of SHIMS) for the duration of the block, and restore everything after it."""
    unknown = sorted(set(names) - set(SHIMS))
    if unknown:
        raise ValueError(f"unknown shim(s) {unknown}; the shims are {sorted(SHIMS)}")
    with contextlib.ExitStack() as stack:
        if "infer_string" in names:
            import pandas

            stack.enter_context(warnings.catch_warnings())
            # pandas 3 warns that the option will go in pandas 4, at every string column it builds.
            warnings.filterwarnings("ignore", message=".*future.infer_string.*")
            try:
                stack.enter_context(pandas.option_context("future.infer_string", False))
            except KeyError as error:  # pandas' OptionError: pandas < 2.1 has no such option and infers no strings
                if pandas_string_option_problem():
                    raise ArtemisPreprocessingError(pandas_string_option_problem()) from error
        if "concat_axis" in names:
            import pandas

            stack.enter_context(_replaced(pandas, "concat", "pandas.concat", concat_with_positional_axis))
        if "word_tokenize" in names:
            import nltk

            stack.enter_context(_replaced(nltk, "word_tokenize", "nltk.word_tokenize", word_tokenize_without_punkt))
            stack.enter_context(_replaced(nltk, "download", "nltk.download", download_without_punkt))
        yield


@contextlib.contextmanager
def _replaced(module, attribute, key, replacement):
    ORIGINALS[key] = original = getattr(module, attribute)
    setattr(module, attribute, replacement)
    try:
        yield
    finally:
        setattr(module, attribute, original)
        ORIGINALS.pop(key, None)


# ------------------------------------------------------------------------------------------------- checks
def check_artemis_repo(artemis_repo):
    """The root of an optas/artemis checkout (its script and resource files present) as a resolved Path."""
    repo = Path(artemis_repo).expanduser()
    given = display_path(artemis_repo)
    if not repo.exists():
        raise ArtemisPreprocessingError(f"--artemis_repo {given}: no such folder. Clone ArtEmis's code "
                                        "(git clone https://github.com/optas/artemis) and pass the clone's root.")
    if repo.is_file() and repo.name == SCRIPT.name:
        raise ArtemisPreprocessingError(f"--artemis_repo {given} is the script itself: pass the root of the "
                                        f"checkout, {display_path(repo.resolve().parents[2])}.")
    if not (repo / SCRIPT).is_file():
        for candidate in (repo.parent, repo.parent.parent):
            if (candidate / SCRIPT).is_file():
                raise ArtemisPreprocessingError(f"--artemis_repo {given} is inside ArtEmis's checkout: pass its "
                                                f"root, {display_path(candidate.resolve())}.")
        raise ArtemisPreprocessingError(f"--artemis_repo {given} is not a checkout of optas/artemis: it has no "
                                        f"{SCRIPT.as_posix()}.")
    missing = [path.as_posix() for path in RESOURCES if not (repo / path).is_file()]
    if missing:
        raise ArtemisPreprocessingError(f"--artemis_repo {given} lacks {', '.join(missing)}, which the script reads "
                                        "for spell checking; use a complete checkout of optas/artemis.")
    return repo.resolve()


def check_dependencies(modules=DEPENDENCIES):
    """Import every module of `modules` ({module: pip package}); raise naming the pip package of each one that is
    missing, in a pip command for this Python."""
    missing = {}
    for module, package in modules.items():
        try:
            importlib.import_module(module)
        except ImportError as error:
            missing[package] = f"{module} ({error})"
    if missing:
        raise ArtemisPreprocessingError(
            f"ArtEmis's preprocessing needs Python packages that this Python ({sys.executable}) cannot import: "
            f"{'; '.join(missing.values())}. Install them with: {sys.executable} -m pip install "
            + " ".join(f"'{package}'" for package in missing)
        )


# ------------------------------------------------------------------------------------------------- running
def script_arguments(raw_artemis_data_csv, save_out_dir, options):
    """The script's own command line: `options` maps its option names (random_seed, split_loads, ...) to values;
    None values are left out (the script's default)."""
    argv = ["-save-out-dir", str(save_out_dir), "-raw-artemis-data-csv", str(raw_artemis_data_csv)]
    for name, value in options.items():
        if value is None:
            continue
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            argv += [flag, str(value)]
        elif isinstance(value, (list, tuple)):
            argv += [flag, *map(str, value)]
        else:
            argv += [flag, str(value)]
    return argv


@contextlib.contextmanager
def _script_context(repo, script, argv):
    """sys.argv as `python <script> <argv>` would have it, and ArtEmis's `artemis` package imported from the
    checkout by its location (`import_artemis_package`), whether or not it is pip-installed; both undone after."""
    saved_argv = sys.argv
    loaded = sys.modules.get("artemis")
    location = getattr(loaded, "__file__", None) or next(iter(getattr(loaded, "__path__", [])), None)
    if loaded is not None and (location is None or not Path(location).resolve().is_relative_to(repo)):
        raise ArtemisPreprocessingError(f"another `artemis` package ({display_path(location or loaded)}) is already "
                                        "loaded in this process; run from a fresh Python.")
    if loaded is None:
        import_artemis_package(repo)
    sys.argv = [str(script), *argv]
    try:
        yield
    finally:
        sys.argv = saved_argv
        if loaded is None:  # the checkout's package and its modules go with the run
            for name in [name for name in sys.modules if name == "artemis" or name.startswith("artemis.")]:
                del sys.modules[name]


def import_artemis_package(repo):
    """Put the checkout's `artemis` package in `sys.modules`, so that the script's `from artemis.in_out.basics import
    ...` finds its modules there (through the package's `__path__`), as running it from the checkout would."""
    import importlib.machinery
    import importlib.util

    folder = Path(repo) / "artemis"
    init = folder / "__init__.py"
    if init.is_file():
        spec = importlib.util.spec_from_file_location("artemis", init, submodule_search_locations=[str(folder)])
    else:  # a namespace package
        spec = importlib.machinery.ModuleSpec("artemis", None, is_package=True)
        spec.submodule_search_locations = [str(folder)]
    module = importlib.util.module_from_spec(spec)
    sys.modules["artemis"] = module
    try:
        if spec.loader is not None:
            spec.loader.exec_module(module)
    except BaseException:
        del sys.modules["artemis"]
        raise
    return module


def quiet_pandas_deprecations():
    """pandas 3 warns at each `inplace=True` of the script that pandas 4 will remove it: nothing to act on here, and
    it does not change the result."""
    try:
        from pandas.errors import Pandas4Warning
    except ImportError:  # pandas < 3
        return
    warnings.filterwarnings("ignore", category=Pandas4Warning)


def run_script(repo, argv, shims=tuple(SHIMS)):
    """Run `<repo>/artemis/scripts/preprocess_artemis_data.py argv` in this process, as `__main__`, with `shims`."""
    script = repo / SCRIPT
    with _script_context(repo, script, argv), compatibility_shims(shims), warnings.catch_warnings():
        quiet_pandas_deprecations()
        try:
            runpy.run_path(str(script), run_name="__main__")
        except ModuleNotFoundError as error:
            top = (error.name or "").split(".")[0]
            if top == "artemis":
                raise
            raise ArtemisPreprocessingError(
                f"ArtEmis's preprocessing imports {error.name!r}, which this Python ({sys.executable}) lacks: "
                f"{sys.executable} -m pip install '{PIP_NAMES.get(top, top)}'"
            ) from error
        except SystemExit as error:  # its argparse
            if error.code not in (0, None):
                message = f"ArtEmis's script refused its arguments {argv} (exit {error.code})."
                raise ArtemisPreprocessingError(message) from error


def package_versions(names=RECORDED_PACKAGES):
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_commit(repo):
    """The checked-out commit of `repo` (None when it is not a git checkout or git is absent)."""
    try:
        result = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None


def split_counts(preprocessed_csv):
    """Annotations per `split` value of artemis_preprocessed.csv, and the paintings (art_style, painting) of each."""
    limit = csv.field_size_limit(sys.maxsize)  # the limit is global to the process: set back below
    annotations, paintings = Counter(), {}
    try:
        with open(preprocessed_csv, encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                annotations[row["split"]] += 1
                paintings.setdefault(row["split"], set()).add((row["art_style"], row["painting"]))
    finally:
        csv.field_size_limit(limit)
    return {split: {"annotations": annotations[split], "paintings": len(paintings[split])}
            for split in sorted(annotations)}


def check_options(options):
    """Combinations the script would silently change: `preprocess_for_deep_nets` replaces four of its options."""
    if options.get("preprocess_for_deep_nets") in (None, False):
        return
    given = [name for name in DEEP_NET_OVERRIDES if options.get(name) is not None]
    if given:
        flags = ", ".join(f"--{name}" for name in given)
        raise ArtemisPreprocessingError(
            f"{flags}: --preprocess_for_deep_nets true sets these to the paper's values (too_long_utter_prc 95, "
            "too_short_len 5, min_word_freq 5, too_high_repetition 41) whatever is given; pass "
            "--preprocess_for_deep_nets false to choose them."
        )


def run_artemis_preprocessing(artemis_repo, raw_artemis_data_csv, output_dir, options=None, shims=tuple(SHIMS),
                              overwrite=False, dependencies=DEPENDENCIES):
    """Run ArtEmis's `preprocess_artemis_data.py` with `shims` and put its files and the run record in `output_dir`.

    `options` maps the script's own option names (preprocess_for_deep_nets, random_seed, too_long_utter_prc,
    too_short_len, split_loads, min_word_freq, automatic_spell_check, too_high_repetition, group_gt_anno,
    n_train_examples) to values; missing or None ones keep the script's default. An earlier result in `output_dir` is
    replaced only with `overwrite`, once the new one is complete, and only its own files (the script's four files and
    the record); anything else in the folder stays. `dependencies` ({module: pip package}) are checked first.
    Returns the run record (a dict)."""
    options = dict(options or {})
    check_options(options)
    repo = check_artemis_repo(artemis_repo)
    raw_csv = Path(raw_artemis_data_csv).expanduser()
    if not raw_csv.is_file():
        raise ArtemisPreprocessingError(f"--raw_artemis_data_csv {display_path(raw_artemis_data_csv)}: no such file "
                                        "(ArtEmis's artemis_dataset_release_v0.csv).")
    check_dependencies(dependencies)
    if "infer_string" in shims and pandas_string_option_problem():
        raise ArtemisPreprocessingError(pandas_string_option_problem())
    warning = nltk_tokenizer_warning()
    if warning:
        print(f"[run_artemis_preprocessing] warning: {warning}")
    started = time.perf_counter()
    names = SCRIPT_OUTPUTS + (RUN_RECORD,)
    with staged_output(output_dir, "ArtEmis preprocessing", names, overwrite, "--overwrite", "--output_dir") as staging:
        argv = script_arguments(raw_csv.resolve(), staging, options)
        run_script(repo, argv, shims)
        if not (staging / PREPROCESSED_CSV).is_file():
            raise ArtemisPreprocessingError(f"ArtEmis's script finished without writing {PREPROCESSED_CSV}.")
        script = repo / SCRIPT
        script_sha256 = file_sha256(script)
        record = {
            "command": "python -m dataset_scripts.run_artemis_preprocessing",
            "artemis_repo": display_path(repo),
            "artemis_commit": git_commit(repo),
            "script": SCRIPT.as_posix(),
            "script_sha256": script_sha256,
            "script_is": UPSTREAM_SCRIPT_SHA256.get(script_sha256, "not a known upstream version (modified?)"),
            "script_arguments": [display_path(arg) for arg in argv],
            "note": "the script wrote into a staging folder beside --output_dir (named in its config.json.txt and "
                    "in script_arguments), whose files were then moved here",
            "raw_artemis_data_csv": display_path(raw_csv.resolve()),
            "versions": package_versions(),
            "platform": platform.platform(),
            "shims": {name: SHIMS[name] for name in shims},
            "warnings": [warning] if warning else [],
            "outputs": {path.name: path.stat().st_size for path in sorted(staging.iterdir())},
            "splits": split_counts(staging / PREPROCESSED_CSV),
            "seconds": round(time.perf_counter() - started, 1),
        }
        write_json_atomic(staging / RUN_RECORD, record)
    return record


def versions_text(record):
    """One line of the versions a run used, for the console."""
    return ", ".join(f"{name} {version}" for name, version in record["versions"].items() if version)
