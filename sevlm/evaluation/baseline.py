"""Zero-shot baselines on the SEVLM protocol: any transformers `image-text-to-text` model (LLaVA, Idefics, Qwen-VL,
...) asked, for each painting of a prepared corpus, for one of the corpus's emotions and a one-sentence reason.

The emotion and the explanation are parsed from the model's free text (`parse_answer`) and written as a
`predictions.jsonl` that `sevlm-eval --predictions_file` scores exactly as it scores SEVLM. An answer in which no
emotion of the corpus can be found is kept, never dropped: its emotion is "" (wrong for every emotion metric, counted
in `num_invalid_emotions`) and its whole text is scored as the explanation; the number of such answers is in
`baseline_summary.json`.

    from sevlm.evaluation.baseline import BaselineArguments, run_baseline
    run_baseline(BaselineArguments(model_name_or_path="llava-hf/llava-1.5-7b-hf", dataset_path="data/demo"))
"""

import json
import logging
import os
import re
import unicodedata
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sevlm import DEMO_CORPUS
from sevlm.io import check_output_folder, display_path, json_safe, replace_file, staged_output, write_json_atomic
from sevlm.loading import pick_device
from sevlm.names import emotion_key  # the project's one rule for comparing emotion names

logger = logging.getLogger(__name__)

INSTRUCTION = (
    "Which emotion does this artwork evoke most strongly? Choose exactly one of: {emotions}.\n"
    "Answer in two lines:\nEmotion: <one of these emotions>\nReason: <one sentence explaining why>"
)
OUTPUT_FILES = ("predictions.jsonl", "baseline_summary.json", "baseline_args.json")
OUTPUT_OWNER = "baseline run"
DTYPES = ("auto", "float32", "bfloat16", "float16")


@dataclass
class BaselineArguments:
    model_name_or_path: str = field(
        metadata={
            "help": "A transformers image-text-to-text model: Hub id or saved folder (LLaVA, Idefics, Qwen-VL, ...)."
        }
    )
    dataset_path: str = field(
        default=DEMO_CORPUS, metadata={"help": "Prepared dataset (DatasetDict saved with save_to_disk)."}
    )
    split: str = field(default="test", metadata={"help": "Split to answer for."})
    output_dir: str | None = field(
        default=None,
        metadata={"help": "Where predictions.jsonl goes. Default: outputs/baseline/<model name>/<split>."},
    )
    overwrite: bool = field(
        default=False,
        metadata={
            "aliases": ["--overwrite_output_dir"],
            "help": "Replace the files of an earlier baseline run in --output_dir (once the new ones are complete; "
            "anything else in the folder stays).",
        },
    )
    instruction: str = field(
        default=INSTRUCTION,
        metadata={
            "help": "The text shown with each painting; {emotions} becomes the corpus's emotions, comma-separated."
        },
    )
    batch_size: int = field(default=4, metadata={"help": "Paintings per generation batch (at least 1)."})
    max_new_tokens: int = field(default=60, metadata={"help": "Most tokens generated per answer."})
    max_samples: int | None = field(
        default=None, metadata={"help": "Answer only for the first N paintings (quick checks)."}
    )
    dtype: str = field(
        default="auto",
        metadata={"help": "Weights' dtype: auto (the checkpoint's), float32, bfloat16 or float16.", "choices": DTYPES},
    )
    device: str | None = field(
        default=None, metadata={"help": "cuda, cuda:1, mps or cpu. Default: accelerate's choice."}
    )
    trust_remote_code: bool = field(
        default=False, metadata={"help": "Allow the model's own code from its folder or the Hub (some VLMs need it)."}
    )
    seed: int = field(default=42, metadata={"help": "Random seed (generation is greedy; this fixes anything else)."})


def check_arguments(args):
    problems = []
    if args.batch_size < 1:
        problems.append(f"--batch_size must be at least 1, got {args.batch_size}.")
    if args.max_samples is not None and args.max_samples < 1:
        problems.append(
            f"--max_samples must be at least 1 (leave it out to answer for every painting), got {args.max_samples}."
        )
    if "{emotions}" not in args.instruction:
        problems.append("--instruction must contain {emotions}, where the corpus's emotion names go.")
    if args.max_new_tokens < 1:
        problems.append(f"--max_new_tokens must be at least 1, got {args.max_new_tokens}.")
    if problems:
        raise ValueError(" ".join(problems))


def resolve_defaults(args):
    if args.output_dir is None:
        args.output_dir = os.path.join("outputs", "baseline", Path(args.model_name_or_path).name, args.split)
    return args


# ---------------------------------------------------------------------------------------------- parsing
LABEL = r"^[\s*_#>-]*(?:{names})[\s*_]*[:=\-–][\s*_]*"
EMOTION_LABEL = re.compile(LABEL.format(names="emotion|feeling|answer"), re.IGNORECASE | re.MULTILINE)
REASON_LABEL = re.compile(LABEL.format(names="reason|explanation|because|why"), re.IGNORECASE | re.MULTILINE)
BECAUSE = re.compile(r"(?<!\w)because(?!\w)[\s,:]*", re.IGNORECASE)


def find_emotion(text, emotions):
    """The corpus emotion named first in `text` (names compared with `emotion_key`, as whole words; at the same
    position the longer name wins: "something else" over "something"), or None."""
    normalised = emotion_key(text)
    found = []
    for name in emotions:
        match = re.search(r"(?<!\w)" + re.escape(emotion_key(name)) + r"(?!\w)", normalised)
        if match:
            found.append((match.start(), -len(match.group()), name))
    return min(found)[2] if found else None


def parse_answer(answer, emotions):
    """(emotion or None, explanation) from a model's free-text answer.

    The emotion: the first corpus emotion named on a labelled line ("Emotion: awe", "**Feeling** - Awe"), else the
    first one named anywhere in the answer. The explanation: the text after a "Reason:" / "Explanation:" /
    "Because:" label, else after the first "because", else the answer without its emotion label line (or without
    the emotion name it starts with); on one line. Without an emotion, the whole answer is the explanation.
    """
    text = unicodedata.normalize("NFC", answer).strip()
    labelled = EMOTION_LABEL.search(text)
    emotion = find_emotion(text[labelled.end() :].split("\n", 1)[0], emotions) if labelled else None
    emotion = emotion or find_emotion(text, emotions)
    if emotion is None:
        return None, _one_line(text)
    return emotion, _one_line(_explanation(text, labelled, emotion))


def _explanation(text, labelled, emotion):
    reason = REASON_LABEL.search(text)
    if reason:
        return text[reason.end() :]
    because = BECAUSE.search(text)
    if because:
        return text[because.end() :]
    if labelled:  # "Emotion: awe" and free text around it
        line_end = text.find("\n", labelled.end())
        return text[: labelled.start()] + ("" if line_end < 0 else text[line_end:])
    leading = re.match(r"\W*" + r"\s+".join(map(re.escape, emotion.split())) + r"(?!\w)[\W_]*", text, re.IGNORECASE)
    return text[leading.end() :] if leading else text


def _one_line(text):
    return " ".join(text.split()).strip(" \"'*")


# ------------------------------------------------------------------------------------------- generation
def load_model_and_processor(model_name_or_path, device, dtype="auto", trust_remote_code=False):
    """(model in eval mode on `device`, processor) of an image-text-to-text model, with a clear error for anything
    else (a SEVLM folder, a text-only model, a processor without a chat template)."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor, PretrainedConfig

    model_type = PretrainedConfig.get_config_dict(model_name_or_path)[0].get("model_type")
    if model_type == "sevlm":
        raise ValueError(
            f"{model_name_or_path} is a SEVLM model: evaluate it with sevlm-eval --model_name_or_path."
        )
    try:
        model = AutoModelForImageTextToText.from_pretrained(
            model_name_or_path,
            dtype=dtype if dtype == "auto" else getattr(torch, dtype),
            trust_remote_code=trust_remote_code,
        )
    except ValueError as error:
        raise ValueError(
            f"{model_name_or_path} ({model_type}) is not an image-text-to-text model transformers can load "
            f"(AutoModelForImageTextToText; --trust_remote_code for models with their own code): {error}"
        ) from error
    processor = AutoProcessor.from_pretrained(model_name_or_path, trust_remote_code=trust_remote_code)
    if getattr(processor, "chat_template", None) is None:
        raise ValueError(
            f"The processor of {model_name_or_path} has no chat template: the instruction cannot be formatted "
            "for it. Use the model's chat (instruction-tuned) version."
        )
    tokenizer = getattr(processor, "tokenizer", None)
    if tokenizer is not None:
        tokenizer.padding_side = "left"  # batched generation continues every prompt from its last token
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
    return model.to(device).eval(), processor


def build_prompt(processor, instruction, emotions):
    """The chat-formatted prompt (one image, then the instruction) with the corpus's emotions filled in."""
    text = instruction.replace("{emotions}", ", ".join(emotions))
    conversation = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]
    return processor.apply_chat_template(conversation, add_generation_prompt=True)


def answer_batch(model, processor, prompt, images, max_new_tokens):
    """The model's greedy answers (text) for `images`, each shown with `prompt`."""
    import torch

    inputs = processor(
        images=[[image.convert("RGB")] for image in images],
        text=[prompt] * len(images),
        return_tensors="pt",
        padding=True,
    )
    inputs = inputs.to(model.device, dtype=model.dtype)  # casts only the floating-point inputs (pixel values)
    with torch.inference_mode():
        output = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False, num_beams=1)
    if not model.config.is_encoder_decoder:
        output = output[:, inputs["input_ids"].shape[1] :]
    return processor.batch_decode(output, skip_special_tokens=True)


def generate_rows(model, processor, view, emotions, args):
    """One predictions.jsonl row per painting (parsed, or kept unparsed)."""
    from tqdm.auto import tqdm

    prompt = build_prompt(processor, args.instruction, emotions)
    painting_ids = view.select_columns(["painting_id"]).to_dict()["painting_id"]
    images = view.select_columns(["image"])
    rows = []
    for start in tqdm(range(0, len(view), args.batch_size), desc="Answering", unit="batch"):
        answers = answer_batch(
            model, processor, prompt, images[start : start + args.batch_size]["image"], args.max_new_tokens
        )
        for offset, answer in enumerate(answers):
            emotion, explanation = parse_answer(answer, emotions)
            rows.append(
                {
                    "painting_id": painting_ids[start + offset],
                    "emotion": emotion or "",
                    "explanation": explanation,
                    "emotion_parsed": emotion is not None,
                    "raw_answer": answer,
                }
            )
    return rows, prompt


# ------------------------------------------------------------------------------------------------- run
def summary(rows, args, prompt):
    unparsed = [row["painting_id"] for row in rows if not row["emotion_parsed"]]
    return {
        "model_name_or_path": args.model_name_or_path,
        "dataset_path": os.path.abspath(args.dataset_path),
        "split": args.split,
        "num_paintings": len(rows),
        "num_unparsed_emotions": len(unparsed),
        "unparsed_painting_ids": unparsed,
        "num_empty_explanations": sum(not row["explanation"] for row in rows),
        "prompt": prompt,
        "generation": {"max_new_tokens": args.max_new_tokens, "do_sample": False, "num_beams": 1},
    }


def run_baseline(args):
    """Answer for every painting of the split and write predictions.jsonl, baseline_summary.json and
    baseline_args.json to `args.output_dir`; returns the summary."""
    from transformers import set_seed

    from sevlm.evaluation.run import load_split

    args = resolve_defaults(args)
    check_arguments(args)
    check_output_folder(args.output_dir, OUTPUT_OWNER, OUTPUT_FILES, args.overwrite, "--overwrite", "--output_dir")
    set_seed(args.seed)
    view, emotions = load_split(args)
    model, processor = load_model_and_processor(
        args.model_name_or_path, pick_device(args.device), args.dtype, args.trust_remote_code
    )
    rows, prompt = generate_rows(model, processor, view, emotions, args)
    result = summary(rows, args, prompt)
    if result["num_unparsed_emotions"]:
        logger.warning(
            '%d of %d answers name none of the corpus\'s emotions; they are kept with emotion "" (see '
            "baseline_summary.json).",
            result["num_unparsed_emotions"],
            len(rows),
        )
    with staged_output(args.output_dir, OUTPUT_OWNER, OUTPUT_FILES, args.overwrite, "--overwrite", "--output_dir") as staging:
        with replace_file(staging / "predictions.jsonl") as handle:
            for row in rows:
                handle.write(json.dumps(json_safe(row), ensure_ascii=False) + "\n")
        write_json_atomic(staging / "baseline_summary.json", result)
        write_json_atomic(staging / "baseline_args.json", asdict(args))
    print(
        f"{len(rows)} answers, {result['num_unparsed_emotions']} without a recognisable emotion. Wrote "
        f"{', '.join(OUTPUT_FILES)} to {display_path(args.output_dir)}. Score them with:\n"
        f"  sevlm-eval --predictions_file {Path(args.output_dir) / 'predictions.jsonl'} "
        f"--dataset_path {args.dataset_path} --split {args.split}"
    )
    return result


__all__ = [
    "BaselineArguments",
    "INSTRUCTION",
    "answer_batch",
    "build_prompt",
    "find_emotion",
    "parse_answer",
    "run_baseline",
]
