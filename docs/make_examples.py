"""Produce every example output shown in README.md and docs/ from the current demo model, in one run.

    sevlm-train && sevlm-eval && python docs/make_examples.py          # from the repository root

It runs each example of `EXAMPLES` against `outputs/sevlm-demo` on one painting of the demo test split, draws the
card at the top of the README from the same prediction, and writes:

- docs/examples.json: each example's code and output, the painting, and the model's fingerprint;
- docs/images/painting.png and docs/images/sevlm-card.png;
- the blocks between `<!-- example: NAME -->` and `<!-- /example -->` in README.md and docs/*.md, and the quick
  start's table of test scores (from sevlm-eval's metrics.json) between `<!-- numbers: quick-start -->` and
  `<!-- /numbers -->`.

tests/test_docs.py checks that every block shows what examples.json holds and that every example's code runs.
"""

import contextlib
import hashlib
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL = "outputs/sevlm-demo"
CORPUS = "data/demo"
PAINTING = "docs/images/painting.png"
CARD = "docs/images/sevlm-card.png"
EXAMPLES_FILE = ROOT / "docs" / "examples.json"
EVALUATION = "outputs/eval/sevlm-demo/test/metrics.json"
BLOCK = re.compile(r"(<!-- example: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /example -->)", re.S)
NUMBERS_BLOCK = re.compile(r"(<!-- numbers: quick-start -->\n)(?P<body>.*?)(<!-- /numbers -->)", re.S)
# The quick start's table: the demo model's test-split scores, as sevlm-eval wrote them (in percent).
NUMBERS = {"ACC": "emotion_accuracy", "B1": "bleu_1", "B4": "bleu_4", "METEOR": "meteor", "ROUGE-L": "rouge_l",
           "CIDEr": "cider", "EA": "emotional_alignment"}

# Each example: the code a reader runs (Python, or a shell command), and how its output is shown.
EXAMPLES = {
    "pipeline": {
        "language": "python",
        "code": (
            "from transformers import pipeline\n\n"
            f'pipe = pipeline("art-emotion", model="{MODEL}", trust_remote_code=True)\n'
            f'result = pipe("{PAINTING}")\n'
            "print(result)"
        ),
    },
    "pipeline-emotion": {
        "language": "python",
        "code": f'print(pipe("{PAINTING}", emotion="fear"))  # explain a given emotion',
        "after": "pipeline",
    },
    "auto-model": {
        "language": "python",
        "code": (
            "from transformers import AutoModel, AutoProcessor\n\n"
            f'model = AutoModel.from_pretrained("{MODEL}", trust_remote_code=True).eval()\n'
            f'processor = AutoProcessor.from_pretrained("{MODEL}", trust_remote_code=True)\n'
            f'inputs = processor(images="{PAINTING}")\n'
            "ids = model.generate(pixel_values=inputs[\"pixel_values\"])\n"
            "print(processor.post_process_generation(ids))  # the emotion the model writes freely, and why"
        ),
    },
    "predict": {
        "language": "bash",
        "code": f"sevlm-predict {PAINTING} --no_progress",
    },
}


def rounded(value, digits=3):
    """Floats rounded for reading (the examples show what a reader sees, not every digit)."""
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, dict):
        return {key: rounded(item, digits) for key, item in value.items()}
    if isinstance(value, list):
        return [rounded(item, digits) for item in value]
    return value


def run_python(code, namespace):
    """Run `code` in `namespace`; returns what it printed."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "example", "exec"), namespace)
    return printed.getvalue().strip()


def run_examples(examples=EXAMPLES, cwd=ROOT):
    """{name: output text} of every example, run from `cwd` (Python examples share one namespace, in order)."""
    import ast

    outputs, namespace = {}, {}
    for name, example in examples.items():
        if example["language"] == "python":
            text = run_python(example["code"], namespace)
            try:
                text = repr(rounded(ast.literal_eval(text)))
            except (ValueError, SyntaxError):
                pass
        else:
            # The console scripts beside this Python, whether or not its environment is activated.
            env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])}
            result = subprocess.run(
                example["code"], shell=True, cwd=cwd, env=env, capture_output=True, text=True, check=True
            )
            text = result.stdout.strip()
            try:
                text = json.dumps(rounded(json.loads(text)), ensure_ascii=False)
            except ValueError:
                pass
        outputs[name] = text
    return outputs


def render(name, example, output):
    """The Markdown block of one example: its code, then its output as comments (Python) or as printed (shell)."""
    if example["language"] == "python":
        shown = "\n".join("# " + line for line in output.splitlines())
        return f"```python\n{example['code']}\n{shown}\n```\n"
    return f"```bash\n{example['code']}\n```\n\n```json\n{output}\n```\n"


def render_numbers(numbers):
    """The quick start's Markdown table of the demo model's test scores."""
    header = "| demo test split | " + " | ".join(NUMBERS) + " |\n"
    rule = "|---|" + "---:|" * len(NUMBERS) + "\n"
    row = f"| `{MODEL}` | " + " | ".join(f"{100 * numbers[key]:.1f}" for key in NUMBERS.values()) + " |\n"
    return header + rule + row


def documents():
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def update_documents(recorded):
    """Rewrite every example block of README.md and docs/*.md from `recorded` (examples.json)."""
    for path in documents():
        text = path.read_text(encoding="utf-8")

        def replace(match):
            name = match["name"]
            entry = recorded["examples"][name]
            return match.group(1) + render(name, entry, entry["output"]) + match.group(4)

        new = BLOCK.sub(replace, text)
        new = NUMBERS_BLOCK.sub(lambda match: match.group(1) + render_numbers(recorded["numbers"]) + match.group(3), new)
        if new != text:
            path.write_text(new, encoding="utf-8")


def pick_painting():
    """The first painting of the demo test split with a majority emotion, saved as docs/images/painting.png."""
    from datasets import load_from_disk

    from sevlm.evaluation.metric import majority_emotion

    test = load_from_disk(str(ROOT / CORPUS))["test"]
    emotions = test.features["emotions"].feature.names
    for row in test:
        if majority_emotion(row["emotion_histogram"], emotions):
            row["image"].save(ROOT / PAINTING)
            return row["painting_id"]
    raise SystemExit("The demo test split has no painting with a majority emotion.")


def main():
    from sevlm.render import make_card

    if not (ROOT / MODEL / "model.safetensors").is_file():
        raise SystemExit(f"No demo model at {MODEL}: train it first (sevlm-train).")
    evaluation = ROOT / EVALUATION
    if not evaluation.is_file() or evaluation.stat().st_mtime < (ROOT / MODEL / "model.safetensors").stat().st_mtime:
        raise SystemExit(f"No evaluation of the current demo model at {EVALUATION}: run sevlm-eval first.")
    metrics = json.loads(evaluation.read_text(encoding="utf-8"))
    painting = pick_painting()
    outputs = run_examples()
    result = json.loads(outputs["predict"])
    from PIL import Image

    make_card(Image.open(ROOT / PAINTING).convert("RGB"), result, ROOT / CARD, title="A painting of the demo test split")
    recorded = {
        "model": MODEL,
        "model_sha256": hashlib.sha256((ROOT / MODEL / "model.safetensors").read_bytes()).hexdigest(),
        "painting": {"file": PAINTING, "painting_id": painting, "corpus": CORPUS, "split": "test"},
        "card": CARD,
        "numbers": {key: metrics[key] for key in NUMBERS.values()},
        "examples": {name: {**example, "output": outputs[name]} for name, example in EXAMPLES.items()},
    }
    EXAMPLES_FILE.write_text(json.dumps(recorded, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    update_documents(recorded)
    print(f"Wrote {EXAMPLES_FILE.relative_to(ROOT)}, {PAINTING}, {CARD} and the example blocks of the documents.")


if __name__ == "__main__":
    sys.exit(main())
