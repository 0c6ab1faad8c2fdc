"""The generation flags every command shares (`GenerationArguments`, mixed into each command's arguments so that a
flag means and is spelled the same everywhere), the `generate()` options they give, and their checks."""

from dataclasses import dataclass, field


@dataclass
class GenerationArguments:
    """Decoding flags; `None` leaves the model's own generation config in force (greedy, 25 new tokens)."""

    max_new_tokens: int | None = field(default=None, metadata={"help": "Most tokens generated after the prompt (at least 1; the model's default: 25)."})
    num_beams: int | None = field(default=None, metadata={"help": "Beam width (1: greedy, the paper's decoding)."})
    do_sample: bool = field(default=False, metadata={"help": "Sample instead of greedy/beam decoding."})
    temperature: float | None = field(default=None, metadata={"help": "Sampling temperature, above 0 (with --do_sample)."})
    top_p: float | None = field(default=None, metadata={"help": "Nucleus sampling mass in (0, 1] (with --do_sample)."})
    top_k: int | None = field(default=None, metadata={"help": "Top-k sampling cut-off; 0 switches it off (with --do_sample)."})


@dataclass
class CompileArguments:
    """The compiled-decoding flag of the commands that predict many images (`sevlm-predict`, `sevlm-index`)."""

    compile: bool = field(
        default=False,
        metadata={
            "help": "Compiled decoding: a static KV cache and the decoding step compiled by torch.compile, with the "
            "same tokens. It pays on a GPU with many images; the first batch of each size compiles (tens of seconds)."
        },
    )


def generation_kwargs(args):
    """The `generate()` options that were given (the model's generation config supplies the others)."""
    sampling = getattr(args, "do_sample", False)
    names = ["max_new_tokens", "num_beams"] + (["temperature", "top_p", "top_k"] if sampling else [])
    kwargs = {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}
    if sampling:
        kwargs["do_sample"] = True
    return kwargs


def generation_problems(args):
    """Generation flags no model can use, as messages naming the flag, found before any image is read: sampling
    knobs without --do_sample, and values `GenerationConfig.validate()` refuses."""
    problems = []
    given = [f"--{name}" for name in ("temperature", "top_p", "top_k") if getattr(args, name, None) is not None]
    if given and not getattr(args, "do_sample", False):
        problems.append(f"{', '.join(given)} only apply when sampling: add --do_sample (or drop them for greedy/beam decoding).")
    # GenerationConfig.validate() leaves these to the logits processors, which fail only once decoding starts.
    for name in ("max_new_tokens", "num_beams"):
        value = getattr(args, name, None)
        if value is not None and value < 1:
            problems.append(f"--{name} must be at least 1, got {value}.")
    temperature, top_p, top_k = (getattr(args, name, None) for name in ("temperature", "top_p", "top_k"))
    if temperature is not None and not temperature > 0:  # also NaN
        problems.append(f"--temperature must be above 0, got {temperature}.")
    if top_p is not None and not 0 < top_p <= 1:
        problems.append(f"--top_p must be in (0, 1], got {top_p}.")
    if top_k is not None and top_k < 0:
        problems.append(f"--top_k must be 0 (off) or more, got {top_k}.")
    if problems:
        return problems
    from transformers import GenerationConfig

    try:
        GenerationConfig(**generation_kwargs(args)).validate(strict=True)
    except ValueError as error:
        problems.append(f"generation flags: {str(error).strip()}")
    return problems
