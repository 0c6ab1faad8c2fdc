"""The shape of the code base: one import rule, visible in the tree.

- the model files (copied into every model folder) import only each other and their libraries;
- `sevlm.*` imports the model files and itself, never a command;
- commands (`train_sevlm.py`, `eval_sevlm.py`, `app.py`, `dataset_scripts/`, `sevlm/cli/`) import `sevlm.*` and the
  model files, never another command;
- nothing but the tests' subprocess scripts touches `sys.path`;
- every command's `--help` loads neither torch nor transformers' models (what makes it answer at once);
  `sevlm-train --help-all`, which lists every flag of transformers' `TrainingArguments`, may.
"""

import ast
import os
import subprocess
import sys

import pytest
from helpers import REPO_ROOT, console_scripts

MODEL_FILES = {"configuration_sevlm", "modeling_sevlm", "processing_sevlm", "pipeline_sevlm"}
COMMAND_MODULES = {"train_sevlm", "eval_sevlm", "app", "dataset_scripts"}
MODEL_FILE_LIBRARIES = {"torch", "transformers", "numpy", "PIL"}
STANDARD_LIBRARY = set(sys.stdlib_module_names)


def python_files(*parts):
    root = REPO_ROOT.joinpath(*parts)
    return sorted(root.rglob("*.py")) if root.is_dir() else [root]


def imported_modules(path):
    """Every module a file imports (also inside functions), as dotted names; relative imports resolved to the file's
    package."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = path.relative_to(REPO_ROOT).parent.parts
                base = ".".join(package[: len(package) - node.level + 1]) if package else ""
                names.append(".".join(part for part in (base, node.module or "") if part))
            else:
                names.append(node.module)
    return names


def is_command(module):
    top = module.split(".")[0]
    return top in COMMAND_MODULES or module.startswith("sevlm.cli")


def test_model_files_import_only_each_other_and_their_libraries():
    for name in sorted(MODEL_FILES):
        path = REPO_ROOT / f"{name}.py"
        for module in imported_modules(path):
            top = module.split(".")[0]
            assert top in MODEL_FILES | MODEL_FILE_LIBRARIES | STANDARD_LIBRARY or module in MODEL_FILES, (path.name, module)


def test_the_package_never_imports_a_command():
    for path in python_files("sevlm"):
        if "cli" in path.relative_to(REPO_ROOT).parts:
            continue
        for module in imported_modules(path):
            assert not is_command(module), (path.relative_to(REPO_ROOT).as_posix(), module)


def test_commands_never_import_another_command():
    commands = python_files("sevlm", "cli") + python_files("dataset_scripts")
    commands += [REPO_ROOT / "train_sevlm.py", REPO_ROOT / "eval_sevlm.py", REPO_ROOT / "app.py"]
    for path in commands:
        own = path.relative_to(REPO_ROOT).with_suffix("").as_posix().replace("/", ".")
        for module in imported_modules(path):
            if module in ("sevlm.cli.arguments", "sevlm.cli"):
                continue  # the commands' shared argument groups
            if own == "app" and module == "sevlm.cli.app":
                continue  # app.py is sevlm-app where Hugging Face Spaces look for it
            assert not is_command(module) or module == own, (own, module)


def test_nothing_patches_sys_path():
    for path in python_files("sevlm") + python_files("dataset_scripts") + python_files("bench"):
        text = path.read_text(encoding="utf-8")
        assert "sys.path.insert" not in text and "sys.path.append" not in text, path.relative_to(REPO_ROOT).as_posix()
        assert "sys.path[" not in text, path.relative_to(REPO_ROOT).as_posix()
    for name in ("train_sevlm.py", "eval_sevlm.py", "app.py", *(f"{module}.py" for module in MODEL_FILES)):
        assert "sys.path" not in (REPO_ROOT / name).read_text(encoding="utf-8"), name


# Every console script's module, the web app's root file, and the one command without a console script.
COMMANDS = sorted({target.split(":")[0] for target in console_scripts().values()}) + [
    "app.py",
    "dataset_scripts.run_artemis_preprocessing",
]


def test_every_console_script_is_checked():
    """The commands checked below are pyproject.toml's console scripts: the installed package's metadata (where
    COMMANDS comes from) must match the checkout's pyproject.toml, or a new command would escape the checks."""
    tomllib = pytest.importorskip("tomllib")

    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    assert scripts == console_scripts(), "the installed package is out of date: pip install -e . again"
    assert {target.split(":")[0] for target in scripts.values()} <= set(COMMANDS)


@pytest.mark.parametrize("module", COMMANDS)
def test_help_loads_no_model_libraries(module, tmp_path):
    """`--help` answers from the argument definitions alone: neither torch nor transformers' model code is loaded
    (they take seconds to import on a small machine)."""
    run = f"runpy.run_path({str(REPO_ROOT / module)!r}" if module.endswith(".py") else f"runpy.run_module({module!r}"
    script = (
        "import runpy, sys\n"
        f"sys.argv = [{module!r}, '--help']\n"
        "try:\n"
        f"    {run}, run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = sorted(name for name in ('torch', 'transformers.modeling_utils', 'datasets', 'gradio') if name in sys.modules)\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}  # this checkout's commands, not an installed copy's
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert "usage:" in result.stdout, result.stderr[-2000:]
    assert "HEAVY []" in result.stderr, result.stderr[-2000:]


# Flags of other programs that messages and help texts name (torchrun, accelerate, pip, ArtEmis's script).
EXTERNAL_FLAGS = {"--nproc_per_node", "--num_processes", "--multi_gpu", "--standalone", "--master_port", "--no_deps"}


def command_flags():
    """Every option string of every SEVLM command's parser."""
    import importlib

    flags = set()
    modules = [module for module in COMMANDS if not module.endswith(".py")]
    for name in modules:
        module = importlib.import_module(name)
        parser = module.build_parser() if hasattr(module, "build_parser") else None
        if parser is None and name == "train_sevlm":
            from transformers import HfArgumentParser

            from sevlm.training import SevlmTrainingArguments
            from sevlm.training_arguments import DataArguments, ModelArguments

            parser = HfArgumentParser((ModelArguments, DataArguments, SevlmTrainingArguments))
        if parser is None and name == "eval_sevlm":
            from transformers import HfArgumentParser

            parser = HfArgumentParser(module.EvalArguments)
        if parser is None and name == "sevlm.cli.emotion_classifier":
            from transformers import HfArgumentParser

            parser = HfArgumentParser(module.ClassifierArguments)
        if parser is None and name == "sevlm.cli.baseline":
            from transformers import HfArgumentParser

            from sevlm.evaluation.baseline import BaselineArguments

            parser = HfArgumentParser(BaselineArguments)
        assert parser is not None, name
        flags |= {option for action in parser._actions for option in action.option_strings}
    return flags | {"--args_file", "--run-slow"}


def test_every_flag_a_message_names_exists():
    """A message that tells the user to pass a flag names one that a SEVLM command accepts (eval's "pass
    --overwrite" once named a flag its parser rejected)."""
    import re

    known = command_flags()
    named = {}
    for path in python_files("sevlm") + python_files("dataset_scripts"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                for flag in re.findall(r"(?<![\w-])--[a-z][a-z0-9_]*(?![\w-])", node.value):
                    named.setdefault(flag, path.relative_to(REPO_ROOT).as_posix())
    unknown = {flag: where for flag, where in named.items() if flag not in known | EXTERNAL_FLAGS}
    assert not unknown, unknown


# The flags a command requires (so that the unknown flag, not a missing one, is what the parser meets).
REQUIRED_FLAGS = {
    "sevlm-search": ["--index", "idx", "--emotions", "awe"],
    "sevlm-index": ["--output_dir", "idx"],
    "sevlm-prepare": ["--input", "in.csv", "--output_dir", "out"],
    "sevlm-prepare-artemis": ["--artemis_csv", "a.csv", "--wikiart_dir", "wikiart", "--output_dir", "out"],
    "sevlm-emotion-classifier": ["--dataset_path", "data"],
    "sevlm-baseline": ["--model_name_or_path", "vlm", "--dataset_path", "data", "--output_dir", "out"],
    "sevlm-report": ["--index", "idx", "--output_dir", "out"],
}


@pytest.mark.parametrize("command", sorted(console_scripts()))
def test_an_unknown_flag_is_a_usage_error_not_a_traceback(command, capsys):
    """A typo or another command's flag gets argparse's usage line and `error: ...` (exit status 2) in every
    command, whichever parser it uses (HfArgumentParser raises a ValueError for flags it does not know)."""
    import importlib

    module, function = console_scripts()[command].split(":")
    with pytest.raises(SystemExit) as raised:
        getattr(importlib.import_module(module), function)(REQUIRED_FLAGS.get(command, []) + ["--no_such_flag", "1"])
    assert raised.value.code == 2
    err = capsys.readouterr().err
    assert "usage:" in err and "error: unrecognized arguments: --no_such_flag" in err


@pytest.mark.parametrize("command", sorted(console_scripts()))
def test_help_gives_defaults_only_where_they_say_something(command, capsys):
    """No "(default: None)" on a required flag or one without a default, no second default where the help gives
    one."""
    import importlib
    import re

    module, function = console_scripts()[command].split(":")
    with pytest.raises(SystemExit):
        getattr(importlib.import_module(module), function)(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: None)" not in text and "(default: False)" not in text
    assert not re.search(r"default[^()]*\)\.? \(default:", text), "two defaults for one flag"
