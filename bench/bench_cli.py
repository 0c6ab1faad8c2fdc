"""How fast every command answers `--help` (the console scripts of the installed package), as a table.

    python bench/bench_cli.py              # median of 3 runs per command, wall-clock seconds
    python bench/bench_cli.py --repeats 5

`--help` of every command parses its argument definitions without loading torch, datasets or gradio (checked by
tests/test_layout.py); what is left is Python's start and `import transformers` for `HfArgumentParser`.
"""

import argparse
import importlib.metadata
import shutil
import subprocess
import sys
import time
from pathlib import Path

from _common import format_table, machine_lines, median


def seconds(command, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([command, "--help"], capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="Runs per command (the median is shown).")
    args = parser.parse_args(argv)
    bin_dir = Path(sys.executable).parent
    print("\n".join(machine_lines("cpu")))
    rows = []
    baseline = median([_time_python(args.repeats)])
    entry_points = importlib.metadata.distribution("sevlm").entry_points
    commands = sorted(entry.name for entry in entry_points if entry.group == "console_scripts")
    for name in commands:
        command = shutil.which(name, path=str(bin_dir)) or shutil.which(name)
        if command is None:
            rows.append([name, "not installed", ""])
            continue
        value = seconds(command, args.repeats)
        rows.append([name, f"{value:.2f}", "yes" if value < 2 else "NO"])
    print(f"\nPython start alone: {baseline:.2f} s")
    print(format_table(["command --help", "seconds (median)", "under 2 s"], rows))


def _time_python(repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        times.append(time.perf_counter() - start)
    return median(times)


if __name__ == "__main__":
    sys.exit(main())
