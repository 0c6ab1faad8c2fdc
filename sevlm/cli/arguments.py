"""What every SEVLM command shares: args files and how a command reports an error (the generation flags are
`sevlm.generation.GenerationArguments`)."""

import argparse
import shlex
import sys
from pathlib import Path

from sevlm.io import display_path

# Flags whose value in an args file names an input file: a relative path there is read beside the args file when it
# exists there (so that `configs/demo.args` works from any folder and from an installed package).
INPUT_FILE_FLAGS = ("--vision_model_name_or_path", "--text_model_name_or_path", "--tokenizer_name_or_path", "--vad_lexicon")


# ---------------------------------------------------------------------------------------------- args files
def read_args_file(path):
    """The flags in an args file: shell-style words (quotes keep spaces, e.g. --prompt_text " the feeling is"),
    `#` comments, UTF-8 (with or without a byte-order mark). Errors name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--args_file {display_path(path)} does not exist.")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = path.read_bytes()[: error.start].count(b"\n") + 1
        raise ValueError(
            f"--args_file {display_path(path)}, line {line}: not UTF-8 text (byte {error.object[error.start]:#x}); save "
            "the file as UTF-8."
        ) from error
    words = []
    for number, line in _logical_lines(text):
        try:
            words += shlex.split(line, comments=True)
        except ValueError as error:
            raise ValueError(f"--args_file {display_path(path)}, line {number}: {error} ({line.strip()!r}).") from error
    return _resolve_input_files(words, path.parent)


def _logical_lines(text):
    """(first line number, text) of each logical line: a line ending in a backslash continues on the next."""
    start, pending = 1, ""
    for number, line in enumerate(text.splitlines(), start=1):
        if not pending:
            start = number
        if line.endswith("\\") and not line.endswith("\\\\"):
            pending += line[:-1] + " "
            continue
        yield start, pending + line
        pending = ""
    if pending:
        yield start, pending


def _resolve_input_files(words, folder):
    resolved = list(words)
    for index, word in enumerate(words[:-1]):
        value = words[index + 1]
        if word in INPUT_FILE_FLAGS and not Path(value).is_absolute() and (folder / value).exists():
            resolved[index + 1] = str(folder / value)
    return resolved


def expand_args_files(argv):
    """`--args_file FILE` (or `--args_file=FILE`) replaced by the file's flags, where it stands."""
    expanded, index = [], 0
    while index < len(argv):
        item = argv[index]
        if item == "--args_file":
            if index + 1 >= len(argv):
                raise ValueError("--args_file needs a file name.")
            expanded += read_args_file(argv[index + 1])
            index += 2
        elif item.startswith("--args_file="):
            expanded += read_args_file(item.split("=", 1)[1])
            index += 1
        else:
            expanded.append(item)
            index += 1
    return expanded


# ---------------------------------------------------------------------------------------------- errors
def run_command(function, *args, prog=None, expected=(OSError, ValueError)):
    """Run a command's work; an expected failure (a bad file, argument or folder) prints one line naming it and
    returns 1 instead of a traceback. Ctrl-C returns 130."""
    try:
        function(*args)
    except expected as error:
        print(f"{prog or Path(sys.argv[0]).name}: error: {display_path(str(error))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog or Path(sys.argv[0]).name}: interrupted.", file=sys.stderr)
        return 130
    return 0


# ------------------------------------------------------------------------------------------------ parsing
def parse_flags(parser, argv=None, **kwargs):
    """`parser.parse_args_into_dataclasses(args=argv)` of an `HfArgumentParser`, with a flag it does not know (a typo,
    a flag of another command) reported as argparse reports it: the usage line and `error: unrecognized arguments:
    FLAG` (exit status 2), where HfArgumentParser raises a ValueError (a traceback)."""
    *outputs, remaining = parser.parse_args_into_dataclasses(args=argv, return_remaining_strings=True, **kwargs)
    if remaining:
        parser.error(f"unrecognized arguments: {' '.join(remaining)}")
    return outputs


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """`--help` of every command: a flag's default is added to its help only when it says something: not for a
    required flag, a flag without a default (None) or off by default (False), nor where the help already gives it."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.required or action.default in (None, False, argparse.SUPPRESS) or "default" in text:
            return text
        return super()._get_help_string(action)
