"""`python -m dataset_scripts.run_artemis_preprocessing`: ArtEmis's preprocessing script run unmodified on today's
packages through three compatibility shims.

ArtEmis's repository is not available here, so a stand-in script takes its place: it has the script's command line
and uses the three idioms that stop it on today's packages, in the same way (scikit-learn's `train_test_split` over
`Series.unique()` of painting ids, `pd.concat(frames, 0)`, `nltk.word_tokenize` called from a process pool after
`. ? !` were mapped to spaces). Each shim is shown to be needed (the stand-in fails without it) and the three
sufficient (it runs, and gives what the old packages gave).
"""

import json
import re
import string

import numpy as np
import pytest

pandas = pytest.importorskip("pandas", reason="the shims patch pandas: pip install pandas")
nltk = pytest.importorskip("nltk", reason="the word-tokenizer shim wraps NLTK: pip install nltk")
pytest.importorskip("sklearn", reason="the stand-in splits with scikit-learn: pip install scikit-learn")

from nltk.tokenize import NLTKWordTokenizer  # noqa: E402
from nltk.tokenize.punkt import PunktSentenceTokenizer  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from dataset_scripts import run_artemis_preprocessing as cli  # noqa: E402
from sevlm.data import artemis_preprocessing as runner  # noqa: E402
from sevlm.data.artemis_preprocessing import (  # noqa: E402
    RESOURCES,
    RUN_RECORD,
    SCRIPT,
    SHIMS,
    ArtemisPreprocessingError,
    compatibility_shims,
    concat_with_positional_axis,
    run_artemis_preprocessing,
    word_tokenize_without_punkt,
)
from sevlm.data.lookalike import painting_names, raw_utterance, write_raw_csv  # noqa: E402

STANDIN_DEPENDENCIES = {"pandas": "pandas", "sklearn": "scikit-learn", "nltk": "nltk"}

# The command line of ArtEmis's preprocess_artemis_data.py, and its three idioms that today's packages reject.
STANDIN_SCRIPT = '''
import argparse, json, os.path as osp
from multiprocessing import Pool

import nltk
import pandas as pd
from sklearn.model_selection import train_test_split


def str2bool(text):
    return text if isinstance(text, bool) else text.lower() in ("yes", "true", "t", "y", "1")


parser = argparse.ArgumentParser()
parser.add_argument("-save-out-dir", type=str, required=True)
parser.add_argument("-raw-artemis-data-csv", type=str, required=True)
parser.add_argument("--random-seed", type=int, default=2021)
parser.add_argument("--too-long-utter-prc", type=int, default=100)
parser.add_argument("--too-short-len", type=int, default=0)
parser.add_argument("--split-loads", type=float, default=[0.85, 0.05, 0.1], nargs=3)
parser.add_argument("--min-word-freq", type=int, default=0)
parser.add_argument("--automatic-spell-check", type=str2bool, default=True)
parser.add_argument("--too-high-repetition", type=int, default=-1)
parser.add_argument("--group-gt-anno", type=str2bool, default=True)
parser.add_argument("--preprocess-for-deep-nets", type=str2bool, default=False)
parser.add_argument("--n-train-examples", type=int)
args = parser.parse_args()
if args.preprocess_for_deep_nets:
    args.too_high_repetition = 41

df = pd.read_csv(args.raw_artemis_data_csv)
if args.too_high_repetition != -1:
    rest = df[df.repetition >= args.too_high_repetition].assign(split="rest")
    df = df[df.repetition < args.too_high_repetition].reset_index(drop=True)

# 1. make_train_test_val_splits: scikit-learn indexes the array of unique painting ids
unique_id = df.art_style + df.painting
unique_ids = unique_id.unique()
unique_ids.sort()
train, others = train_test_split(unique_ids, test_size=sum(args.split_loads[1:]), random_state=args.random_seed)
train = set(train)
df = df.assign(split=unique_id.apply(lambda x: "train" if x in train else "test"))

# 2. the high-coverage paintings put back, the axis given by position
if args.too_high_repetition != -1:
    df = pd.concat([df, rest], 0)
    df.reset_index(inplace=True, drop=True)

# 3. pre_process_text: punctuation to spaces, then nltk.word_tokenize in a process pool
punct_to_space = str.maketrans(".?!,", "    ")
text = [utterance.lower().translate(punct_to_space) for utterance in df.utterance]
with Pool(2) as pool:
    tokens = list(pool.imap(nltk.word_tokenize, text, chunksize=16))
df["tokens"] = tokens
df["utterance_spelled"] = [" ".join(t) for t in tokens]
df.to_csv(osp.join(args.save_out_dir, "artemis_preprocessed.csv"), index=False)
with open(osp.join(args.save_out_dir, "config.json.txt"), "w") as f_out:
    json.dump(vars(args), f_out, indent=4)
'''


def make_repo(root, script=STANDIN_SCRIPT):
    """A folder laid out as a checkout of optas/artemis, with the stand-in as its script."""
    (root / SCRIPT).parent.mkdir(parents=True)
    (root / SCRIPT).write_text(script, encoding="utf-8")
    for resource in RESOURCES:
        (root / resource).parent.mkdir(parents=True, exist_ok=True)
        (root / resource).write_text("the 100\n", encoding="utf-8")
    return root


@pytest.fixture
def inputs(tmp_path):
    """(repo, raw CSV): 60 generated ArtEmis-shaped paintings, 2 of them with 41 or more annotations."""
    raw_csv = tmp_path / "artemis_dataset_release_v0.csv"
    write_raw_csv(raw_csv, painting_names(60, seed=3, high_coverage=2), seed=3)
    return make_repo(tmp_path / "artemis"), raw_csv


@pytest.fixture
def no_punkt(tmp_path, monkeypatch):
    """NLTK sees no data at all (as offline, where punkt_tab cannot be downloaded); nothing may be downloaded."""
    empty = tmp_path / "nltk_data"
    empty.mkdir()
    monkeypatch.setattr(nltk.data, "path", [str(empty)])

    def refuse(*args, **kwargs):
        raise AssertionError(f"nltk.download{args} called")

    monkeypatch.setattr(nltk, "download", refuse)


@pytest.fixture
def pandas_infers_strings():
    """pandas 3's default, also on pandas 2.1-2.x: string columns as Arrow-backed string arrays."""
    try:
        with pandas.option_context("future.infer_string", True):
            yield
    except pandas.errors.OptionError:
        pytest.skip(f"pandas {pandas.__version__} has no string inference (future.infer_string): nothing to shim")


def run(inputs, output_dir, **kwargs):
    """The runner on the stand-in, with --preprocess_for_deep_nets true (the command's default) unless told."""
    repo, raw_csv = inputs
    kwargs.setdefault("dependencies", STANDIN_DEPENDENCIES)
    kwargs["options"] = {"preprocess_for_deep_nets": True, **kwargs.get("options", {})}
    return run_artemis_preprocessing(repo, raw_csv, output_dir, **kwargs)


def leftovers(folder):
    return sorted(path.name for path in folder.iterdir() if ".staging-" in path.name or ".old-" in path.name)


# ------------------------------------------------------------------------------------ needed and sufficient
EXPECTED_FAILURES = {
    "infer_string": (TypeError, None),  # scikit-learn indexing pandas' Arrow string array
    "concat_axis": (TypeError, "positional"),  # concat() takes 1 positional argument but 2 were given
    "word_tokenize": (LookupError, "punkt"),  # Resource punkt_tab not found
}


@pytest.mark.parametrize("shim", sorted(SHIMS))
def test_each_shim_is_needed(shim, inputs, tmp_path, no_punkt, pandas_infers_strings):
    error, words = EXPECTED_FAILURES[shim]
    output = tmp_path / "preprocessed"
    with pytest.raises(error, match=words):
        run(inputs, output, shims=[name for name in SHIMS if name != shim])
    assert not output.exists() and leftovers(tmp_path) == []  # nothing half-written


def test_the_shims_are_sufficient_and_change_nothing(inputs, tmp_path, no_punkt, pandas_infers_strings):
    raw_csv = inputs[1]
    output = tmp_path / "preprocessed"
    record = run(inputs, output, options={"random_seed": 7, "split_loads": [0.8, 0.1, 0.1]})
    assert record["script_is"].startswith("not a known upstream version")

    written = sorted(path.name for path in output.iterdir() if path.name != ".sevlm-output.json")
    assert written == ["artemis_preprocessed.csv", "config.json.txt", RUN_RECORD]
    config = json.loads((output / "config.json.txt").read_text())
    assert config["random_seed"] == 7 and config["split_loads"] == [0.8, 0.1, 0.1]
    assert config["preprocess_for_deep_nets"] is True and config["raw_artemis_data_csv"] == str(raw_csv.resolve())

    # Restored after the run.
    assert pandas.concat is not concat_with_positional_axis and nltk.word_tokenize is not word_tokenize_without_punkt
    assert pandas.get_option("future.infer_string") is True

    # The split: what scikit-learn gives on the NumPy object array that pandas 1 returned.
    with pandas.option_context("future.infer_string", False):
        raw = pandas.read_csv(raw_csv)
    result = pandas.read_csv(output / "artemis_preprocessed.csv", keep_default_na=False)
    normal = raw.repetition < 41
    ids = np.array(sorted(set(raw.art_style[normal] + raw.painting[normal])), dtype=object)
    expected_train = set(train_test_split(ids, test_size=0.2, random_state=7)[0])
    assert len(result) == len(raw) and list(result.split[-(~normal).sum():]) == ["rest"] * (~normal).sum()
    assert set(result.split[: normal.sum()]) == {"train", "test"}
    units = result.art_style + result.painting
    assert {unit for unit, split in zip(units, result.split) if split == "train"} == expected_train

    # The text: nltk.word_tokenize with a Punkt sentence splitter, applied to the same mapped text.
    punct_to_space = str.maketrans(".?!,", "    ")
    by_row = dict(zip(raw.art_style + raw.painting + raw.utterance, raw.utterance))
    for key, spelled in zip(result.art_style + result.painting + result.utterance, result.utterance_spelled):
        assert spelled == " ".join(punkt_word_tokenize(by_row[key].lower().translate(punct_to_space)))
    assert result.utterance_spelled.str.contains("''").any()  # the quotes' tokens are there, as ArtEmis keeps them

    assert record["splits"]["train"]["paintings"] == len(expected_train)
    assert sum(split["annotations"] for split in record["splits"].values()) == len(raw)
    assert set(record["shims"]) == set(SHIMS)
    assert record["warnings"] == [warning for warning in [runner.nltk_tokenizer_warning()] if warning]
    assert record["versions"]["pandas"] == pandas.__version__ and record["versions"]["nltk"] == nltk.__version__
    assert json.loads((output / RUN_RECORD).read_text())["versions"] == record["versions"]


def test_the_pandas_option_is_restored_when_pandas_2_style(inputs, tmp_path, no_punkt):
    """Without string inference to begin with (pandas 2), the run leaves it so."""
    try:
        with pandas.option_context("future.infer_string", False):
            run(inputs, tmp_path / "preprocessed")
            assert pandas.get_option("future.infer_string") is False
    except pandas.errors.OptionError:
        run(inputs, tmp_path / "preprocessed")


# ----------------------------------------------------------------------------------------------- the shims
def punkt_word_tokenize(text):
    """`nltk.word_tokenize` as NLTK composes it, with an untrained Punkt model standing in for the English one
    (punkt_tab cannot be downloaded here). The trained model's parameters (abbreviations, collocations, sentence
    starters) only decide at candidate breaks, and Punkt's candidates are `.`, `?` and `!` only."""
    sentences = PunktSentenceTokenizer().tokenize(text)
    return [token for sentence in sentences for token in NLTKWordTokenizer().tokenize(sentence)]


def artemis_mapped(text):
    """ArtEmis's `pre_process_text` punctuation mapping (`.?!,:;/\\-~*_=[–]{}$^@|%#<—>` to spaces), lower-cased."""
    return text.lower().translate(str.maketrans(dict.fromkeys(".?!,:;/\\-~*_=[–]{}$^@|%#<—>", " ")))


TRICKY = [
    'She said "I\'m fine." Then she left!',
    "Mr. Smith's dog (a big one) sees St. Paul's... wow?! 'quoted' words & more",
    "line one\nline two\tand a tab … an ellipsis character, «guillemets» and “curly quotes”",
    '"Starting quote and an ending one" here',
    "   ",
    "",
    "no punctuation at all but cannot and gonna",
]


def test_the_tokenizer_equals_word_tokenize_on_artemis_text():
    import random

    rng = random.Random(0)
    characters = string.printable + "–—“”’…"
    texts = TRICKY + [raw_utterance(rng) for _ in range(300)]
    texts += ["".join(rng.choice(characters) for _ in range(rng.randint(0, 80))) for _ in range(300)]
    for text in texts:
        mapped = artemis_mapped(text)
        assert word_tokenize_without_punkt(mapped) == punkt_word_tokenize(mapped), repr(text)


def test_the_tokenizer_would_differ_before_the_mapping():
    """The equality rests on the mapping: with its `.` still there, Punkt splits and the tokens change."""
    text = "It is dark. Very dark."
    assert word_tokenize_without_punkt(text) != punkt_word_tokenize(text)


def test_the_warning_about_nltk_3_10_1_matches_the_tokenizer(monkeypatch):
    """Since NLTK 3.10.1 an apostrophe that opens a word is its own token (3.4.5, ArtEmis's pin, to 3.10.0 kept it):
    the run warns exactly when the installed NLTK does so."""
    splits_apostrophe = word_tokenize_without_punkt("show 'em the sky") == ["show", "'", "em", "the", "sky"]
    assert splits_apostrophe or word_tokenize_without_punkt("show 'em the sky") == ["show", "'em", "the", "sky"]
    assert (runner.nltk_tokenizer_warning() is not None) == splits_apostrophe
    assert runner.version_tuple("3.10.1") == (3, 10, 1) > runner.version_tuple("3.10.0") == (3, 10, 0)
    assert runner.version_tuple("3.9rc1") == (3, 9) and runner.version_tuple("3.10.1.post1") == (3, 10, 1)
    monkeypatch.setattr(nltk, "__version__", "3.10.0")
    assert runner.nltk_tokenizer_warning() is None
    monkeypatch.setattr(nltk, "__version__", "3.11")
    assert "pip install 'nltk<3.10.1'" in runner.nltk_tokenizer_warning()


def test_concat_takes_pandas_1_positional_arguments():
    a, b = pandas.DataFrame({"x": [1]}), pandas.DataFrame({"y": [2]})
    pandas.testing.assert_frame_equal(concat_with_positional_axis([a, b], 1), pandas.concat([a, b], axis=1))
    pandas.testing.assert_frame_equal(concat_with_positional_axis([a, b], 0, "inner", True),
                                      pandas.concat([a, b], axis=0, join="inner", ignore_index=True))
    with pytest.raises(TypeError, match="multiple values"):
        concat_with_positional_axis([a, b], 0, axis=1)
    with pytest.raises(TypeError, match="at most"):
        concat_with_positional_axis([a, b], *range(10))


def test_shims_answer_punkt_downloads_offline_and_restore_everything(monkeypatch):
    calls = []
    monkeypatch.setattr(nltk, "download", lambda *args, **kwargs: calls.append(args) or "passed on")
    originals = (pandas.concat, nltk.word_tokenize, nltk.download)
    with compatibility_shims():
        assert nltk.download("punkt") is True and nltk.download("punkt_tab") is True and calls == []
        assert nltk.download("wordnet") == "passed on" and calls == [("wordnet",)]
        assert nltk.word_tokenize is word_tokenize_without_punkt and pandas.concat is concat_with_positional_axis
    assert (pandas.concat, nltk.word_tokenize, nltk.download) == originals
    with pytest.raises(ValueError, match="unknown shim"), compatibility_shims(["concat"]):
        pass


# ------------------------------------------------------------------------------------------ the output folder
def test_an_earlier_result_is_kept_without_overwrite(inputs, tmp_path, no_punkt):
    output = tmp_path / "preprocessed"
    run(inputs, output)
    before = (output / "artemis_preprocessed.csv").read_bytes()
    with pytest.raises(FileExistsError, match="--overwrite") as error:
        run(inputs, output, options={"random_seed": 5})
    assert (output / "artemis_preprocessed.csv").read_bytes() == before and leftovers(tmp_path) == []
    assert_flags_exist(str(error.value))


def test_overwrite_replaces_only_once_the_new_result_is_complete(inputs, tmp_path, no_punkt):
    output = tmp_path / "preprocessed"
    run(inputs, output)
    before = (output / "artemis_preprocessed.csv").read_bytes()
    with pytest.raises(TypeError):  # a run that fails half-way leaves the earlier result as it was
        run(inputs, output, options={"random_seed": 5}, overwrite=True, shims=["infer_string", "word_tokenize"])
    assert (output / "artemis_preprocessed.csv").read_bytes() == before and leftovers(tmp_path) == []
    run(inputs, output, options={"random_seed": 5}, overwrite=True)
    assert (output / "artemis_preprocessed.csv").read_bytes() != before
    assert json.loads((output / "config.json.txt").read_text())["random_seed"] == 5


def test_overwrite_never_deletes_a_folder_of_other_files(inputs, tmp_path, no_punkt):
    output = tmp_path / "preprocessed"
    output.mkdir()
    (output / "notes.txt").write_text("mine")
    run(inputs, output, overwrite=True)
    run(inputs, output, overwrite=True)
    assert (output / "notes.txt").read_text() == "mine" and (output / "artemis_preprocessed.csv").is_file()
    (output / "notes.txt").unlink()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "artemis_preprocessed.csv").write_text("my own file")
    with pytest.raises(FileExistsError, match="refusing"):
        run(inputs, mine, overwrite=True)
    assert (mine / "artemis_preprocessed.csv").read_text() == "my own file"


# ------------------------------------------------------------------------------------- arguments and errors
def test_wrong_repository_paths_say_what_to_pass(inputs, tmp_path):
    repo, raw_csv = inputs
    cases = {
        tmp_path / "nowhere": "no such folder",
        repo / "artemis": f"inside ArtEmis's checkout: pass its root, {repo.resolve()}",
        repo / SCRIPT: f"is the script itself: pass the root of the checkout, {repo.resolve()}",
        tmp_path: "not a checkout of optas/artemis",
    }
    for path, message in cases.items():
        with pytest.raises(ArtemisPreprocessingError, match="--artemis_repo") as error:
            run_artemis_preprocessing(path, raw_csv, tmp_path / "out", dependencies={})
        assert message in str(error.value)
    (repo / RESOURCES[1]).unlink()
    with pytest.raises(ArtemisPreprocessingError, match="glove.6B.100d.vocabulary.txt"):
        run_artemis_preprocessing(repo, raw_csv, tmp_path / "out", dependencies={})
    with pytest.raises(ArtemisPreprocessingError, match="--raw_artemis_data_csv"):
        run_artemis_preprocessing(make_repo(tmp_path / "other"), tmp_path / "missing.csv", tmp_path / "out",
                                  dependencies={})
    assert not (tmp_path / "out").exists()


def test_missing_dependencies_name_the_pip_package(inputs, tmp_path):
    with pytest.raises(ArtemisPreprocessingError) as error:
        run(inputs, tmp_path / "out", dependencies={"pandas": "pandas", "surely_absent_module_x": "surely-absent-pkg"})
    assert "surely_absent_module_x" in str(error.value) and "-m pip install 'surely-absent-pkg'" in str(error.value)
    assert "'pandas'" not in str(error.value)

    # A module the script imports that the check did not know of: its pip name when known, else the module's.
    repo = make_repo(tmp_path / "needs-symspell", "import symspellpy_not_installed_here\n")
    with pytest.raises(ArtemisPreprocessingError, match="pip install 'symspellpy_not_installed_here'"):
        run_artemis_preprocessing(repo, inputs[1], tmp_path / "out", dependencies={})
    assert not (tmp_path / "out").exists()


def test_the_default_dependencies_are_those_of_artemis_scripts_imports():
    assert runner.DEPENDENCIES == {
        "numpy": "numpy", "pandas": "pandas", "sklearn": "scikit-learn", "nltk": "nltk", "symspellpy": "symspellpy",
        "torch": "torch", "dask.dataframe": "dask[dataframe]", "IPython": "ipython", "PIL": "pillow", "six": "six",
    }


def test_options_overridden_by_deep_nets_are_refused(inputs, tmp_path):
    with pytest.raises(ArtemisPreprocessingError, match="--too_short_len") as error:
        run(inputs, tmp_path / "out", options={"preprocess_for_deep_nets": True, "too_short_len": 3})
    assert_flags_exist(str(error.value))
    assert not (tmp_path / "out").exists()


def assert_flags_exist(message):
    """Every --flag a message names is one of the command's own, and parses with the value the message gives."""
    flags = re.findall(r"(--\w+)(?: (\w+))?", message)
    assert flags
    required = ["--artemis_repo", "r", "--raw_artemis_data_csv", "c", "--output_dir", "o"]
    for flag, value in flags:
        cli.parse_args(required + ([flag] if flag == "--overwrite" else [flag, value or "1"]))


def test_cli_help_explains_every_flag_and_maps_it_to_the_script(capsys):
    with pytest.raises(SystemExit):
        cli.parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for ours, theirs in [("--raw_artemis_data_csv", "-raw-artemis-data-csv"), ("--output_dir", "-save-out-dir")] + [
        (f"--{name}", f"--{name.replace('_', '-')}") for name in cli.OPTION_NAMES
    ]:
        assert ours in text and f"[{theirs}]" in text, ours
    for flag in ("--artemis_repo", "--overwrite", "--disable_shim"):
        assert flag in text
    args = cli.parse_args(["--artemis_repo", "a", "--raw_artemis_data_csv", "b", "--output_dir", "c",
                           "--preprocess_for_deep_nets", "false", "--split_loads", "0.8", "0.1", "0.1",
                           "--group_gt_anno", "no", "--disable_shim", "concat_axis"])
    assert args.preprocess_for_deep_nets is False and args.group_gt_anno is False
    assert args.split_loads == [0.8, 0.1, 0.1] and args.disable_shim == ["concat_axis"]
    defaults = cli.parse_args(["--artemis_repo", "a", "--raw_artemis_data_csv", "b", "--output_dir", "c"])
    assert defaults.preprocess_for_deep_nets is True  # the paper's preprocessing


def test_script_arguments_follow_the_scripts_own_flags(tmp_path):
    argv = runner.script_arguments("raw.csv", tmp_path, {"preprocess_for_deep_nets": True, "random_seed": 3,
                                                         "split_loads": (0.7, 0.1, 0.2), "n_train_examples": None})
    assert argv == ["-save-out-dir", str(tmp_path), "-raw-artemis-data-csv", "raw.csv", "--preprocess-for-deep-nets",
                    "True", "--random-seed", "3", "--split-loads", "0.7", "0.1", "0.2"]


def test_cli_runs_and_prints_versions(inputs, tmp_path, no_punkt, monkeypatch, capsys):
    repo, raw_csv = inputs
    checked = []
    monkeypatch.setattr(runner, "check_dependencies", lambda modules: checked.append(modules))
    argv = ["--artemis_repo", str(repo), "--raw_artemis_data_csv", str(raw_csv), "--output_dir", str(tmp_path / "out")]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert f"pandas {pandas.__version__}" in out and f"nltk {nltk.__version__}" in out
    assert "shims: infer_string, concat_axis, word_tokenize" in out and checked == [runner.DEPENDENCIES]
    assert "rest 2 paintings" in out  # --preprocess_for_deep_nets true by default: repetition >= 41 set aside
    assert cli.main(argv) == 1  # the result is there now
    assert "--overwrite" in capsys.readouterr().err
    assert cli.main(argv[:1] + [str(tmp_path / "nowhere")] + argv[2:]) == 1
    assert "error: --artemis_repo" in capsys.readouterr().err


# ------------------------------------------------------------------------------ the benchmark's look-alike file
def test_the_generated_preprocessed_csv_follows_artemis_rules(tmp_path):
    """bench/bench_prepare.py's stand-in for artemis_preprocessed.csv drops rows as ArtEmis does (fewer than 5 tokens,
    more than the training split's 95th length percentile), keeps the quotes' `''` tokens and puts `rest` last."""
    import csv

    from sevlm.data.artemis import official_split
    from sevlm.data.lookalike import artemis_tokens, write_preprocessed_csv

    paintings = painting_names(400, seed=5, high_coverage=6)
    raw_csv = tmp_path / "raw.csv"
    write_raw_csv(raw_csv, paintings, seed=5)
    splits = official_split({style + name for style, name, repetition in paintings if repetition < 41})
    written, dropped = write_preprocessed_csv(raw_csv, tmp_path / "pre.csv", splits)

    with open(raw_csv, encoding="utf-8", newline="") as handle:
        raw = list(csv.DictReader(handle))
    with open(tmp_path / "pre.csv", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    lengths = [len(artemis_tokens(row["utterance"])) for row in raw]
    train = [n for n, row in zip(lengths, raw) if splits.get(row["art_style"] + row["painting"]) == "train"]
    too_long = np.percentile(train, 95)
    assert written == len(rows) == sum(5 <= n <= too_long for n in lengths) and dropped == len(raw) - written
    assert any(n > too_long for n in lengths) and any(n < 5 for n in lengths)  # both rules drop something here
    assert all(5 <= int(row["tokens_len"]) <= too_long for row in rows)
    kinds = [row["split"] == "rest" for row in rows]
    assert kinds == sorted(kinds) and any(kinds)  # the rest rows after the others
    assert any("''" in row["tokens"] for row in rows)
    for row in rows[:50]:
        assert row["utterance_spelled"] == " ".join(artemis_tokens(row["utterance"]))
        assert json.loads(row["tokens_encoded"])[0] == 1 and len(json.loads(row["tokens_encoded"])) == int(too_long) + 2


def test_split_counts_leave_the_csv_modules_limit_as_it_was(tmp_path):
    """The csv module's cell limit is global to the process: reading the preprocessed file must set it back."""
    import csv

    table = tmp_path / "artemis_preprocessed.csv"
    table.write_text("art_style,painting,split\nA,p1,train\nA,p2,test\nA,p1,train\n", encoding="utf-8")
    before = csv.field_size_limit()
    assert runner.split_counts(table) == {"test": {"annotations": 1, "paintings": 1}, "train": {"annotations": 2, "paintings": 1}}
    assert csv.field_size_limit() == before


def test_the_script_imports_artemis_from_the_checkout_without_touching_sys_path(tmp_path):
    """ArtEmis's script imports its own package (`from artemis.in_out.basics import ...`): the runner imports that
    package from the checkout by its location, leaving sys.path as it was."""
    import sys

    repo = tmp_path / "artemis-repo"
    (repo / "artemis" / "in_out").mkdir(parents=True)
    (repo / "artemis" / "__init__.py").write_text("")
    (repo / "artemis" / "in_out" / "__init__.py").write_text("")
    (repo / "artemis" / "in_out" / "basics.py").write_text("WHERE = 'the checkout'\n")
    (repo / SCRIPT).parent.mkdir(parents=True, exist_ok=True)
    (repo / SCRIPT).write_text("import sys\nfrom artemis.in_out.basics import WHERE\nopen(sys.argv[1], 'w').write(WHERE)\n")
    before = list(sys.path)
    saved = {name: module for name, module in sys.modules.items() if name == "artemis" or name.startswith("artemis.")}
    for name in saved:
        del sys.modules[name]
    try:
        runner.run_script(repo, [str(tmp_path / "out.txt")], shims=())
        assert (tmp_path / "out.txt").read_text() == "the checkout"
        assert sys.path == before and "artemis" not in sys.modules  # nothing of the run stays
    finally:
        for name in [name for name in sys.modules if name == "artemis" or name.startswith("artemis.")]:
            del sys.modules[name]
        sys.modules.update(saved)
