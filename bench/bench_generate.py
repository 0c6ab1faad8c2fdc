"""Generation throughput of the real-size SEVLM (random weights), in explanations per second.

Compares, in one process on one device:
  (a) SEVLM `generate()`: KV cache, the on-device `[vocab, 3]` VAD table, causal VAD encoder;
  (b) a faithful re-implementation of the reference decoding loop: no KV cache, a full forward per step over the
      whole sequence (all positions' logits), the bidirectional VAD encoder recomputed over the whole sequence,
      and per step, per sample, the text re-decoded token by token and each word looked up in the VAD lexicon in
      Python (word, else its lemma: `modeling_sevlm.lookup_vad`, lemminflect standing in for NLTK);
  (c) plain GPT-2 with cross-attention `generate()` with the same decoder weights and no SEVLM module (the floor).
Decode-only: image features given. End-to-end: from pixel values (the CLIP tower runs once per batch in every
variant). Greedy, 25 new tokens. Also checks that (a) with VAD fusion off gives the same tokens as (c), and that
(b) run with the causal encoder gives the same tokens as (a) (the loop is the same model, only slower).

Operators per new token: aten operators counted with torch.profiler over a generation of 2 and of 10 new tokens
(the difference over 8 tokens: prefill and set-up cancel out), for (a) and (c), on the demo-size model (configs/
demo_*.json, on the CPU) and on this run's model and device. "compute" counts the leaf operators that do work (not
views, allocations or conversions that copy nothing), the closer stand-in for GPU kernel launches. A GPU runs
small-batch decoding launch-bound, so the extra operators of (a) over (c) are its extra time there; the count is
the same on any device, which lets a CPU measure it. A line per model says where the extra goes, operator by
operator.

With `--static-compile`, also (a) with a static KV cache, without and with `torch.compile` of the decoding step
(`generate(cache_implementation="static")`, which compiles by itself on a GPU: inductor, CUDA graphs), against (a)
with the default dynamic cache, decode-only; the first compiled call (compilation included) is reported apart, and
the compiled tokens are checked against the dynamic-cache ones. Where they part, the check prints the gap between
the two best logits of the eager run at that step next to how far compiled and eager logits differ before it: a gap
within that difference is a near-tie that rounding decides (float16 with random weights has many), a larger one a
real difference.

    python3 bench/bench_generate.py                # the default run (under 5 minutes on 2 quiet CPU cores)
    python3 bench/bench_generate.py --repeats 5 --ref-repeats 5 --e2e-repeats 5   # the documented medians
    python3 bench/bench_generate.py --quick        # tiny sizes: checks the script only
    python3 bench/bench_generate.py --device cuda --dtype float16 --batch-sizes 1 64 --static-compile --skip-e2e
    python3 bench/bench_generate.py --quick --static-compile --batch-sizes 1 4    # the same on CPU, tiny sizes
    python3 bench/bench_generate.py --operators-only   # only the operator counts (demo size and real size)
"""

import argparse
import os
import time

from _common import (  # noqa: E402
    REPO_ROOT,
    SENTENCES,
    build_model,
    foreign_load_line,
    format_table,
    machine_lines,
    median,
    parameter_summary,
    plain_captioner,
    set_clock,
    synchronize,
    timed,
    torch,
    wait_for_quiet,
)

from configuration_sevlm import ARTEMIS_EMOTIONS  # noqa: E402
from modeling_sevlm import SevlmForConditionalGeneration  # noqa: E402
from processing_sevlm import SevlmProcessor  # noqa: E402
from sevlm.tokenizer import train_tokenizer  # noqa: E402
from sevlm.vad import build_vad_table, lookup_vad  # noqa: E402

ZERO_VAD = (0.0, 0.0, 0.0)


class ReferenceDecoder:
    """The reference implementation's greedy decoding loop, re-implemented on the SEVLM weights."""

    def __init__(self, model, tokenizer, lexicon, causal=False):
        self.model = model
        self.tokenizer = tokenizer
        self.lexicon = lexicon
        self.causal = causal
        self.special = set(tokenizer.all_special_ids)
        self.connector = list(model.config.connector_token_ids)
        self.emotion_id = model.config.emotion_token_id
        self.explanation_id = model.config.explanation_token_id
        self.eos_id = model.config.text_config.eos_token_id
        self.pad_id = model.config.text_config.pad_token_id

    def token_vad(self, ids):
        """Re-decode a sample's tokens and look each word up in the lexicon (else its lemma), in Python."""
        values = []
        for token_id, piece in zip(ids, self.tokenizer.convert_ids_to_tokens(ids)):
            if token_id in self.special or piece is None:
                values.append(ZERO_VAD)
                continue
            found = lookup_vad(self.lexicon, self.tokenizer.convert_tokens_to_string([piece]))
            values.append(found if found is not None else ZERO_VAD)
        return values

    @torch.inference_mode()
    def generate(self, encoder_hidden_states, prompt, max_new_tokens=25, scores=None):
        """Greedy decoding from `prompt` (input_ids and token_type_ids of equal-length, unpadded prompts).

        `scores`: a list to which each step's next-token logits are appended (for the checks)."""
        model = self.model
        device = encoder_hidden_states.device
        batch = encoder_hidden_states.shape[0]
        rows = prompt["input_ids"][:batch].tolist()
        segments = prompt["token_type_ids"][:batch].tolist()
        finished = [False] * batch
        encoder = model.vad_encoder
        saved, encoder.causal = encoder.causal, self.causal
        try:
            for _ in range(max_new_tokens):
                input_ids = torch.tensor(rows, device=device)
                token_type_ids = torch.tensor(segments, device=device)
                attention_mask = torch.ones_like(input_ids)
                vad_values = torch.tensor([self.token_vad(row) for row in rows], dtype=model.dtype, device=device)
                vad_features = encoder(vad_values, attention_mask)
                logits = model(
                    input_ids=input_ids,
                    encoder_hidden_states=encoder_hidden_states,
                    attention_mask=attention_mask,
                    token_type_ids=token_type_ids,
                    vad_features=vad_features,
                    use_cache=False,
                ).logits
                if scores is not None:
                    scores.append(logits[:, -1].float().cpu())
                next_ids = logits[:, -1].argmax(-1).tolist()
                for i, token in enumerate(next_ids):
                    token = self.pad_id if finished[i] else token
                    rows[i].append(token)
                    done = rows[i][-len(self.connector) :] == self.connector
                    segments[i].append(self.explanation_id if done or segments[i][-1] == self.explanation_id else self.emotion_id)
                    finished[i] = finished[i] or token == self.eos_id
                if all(finished):
                    break
        finally:
            encoder.causal = saved
        return torch.tensor(rows, device=device)


def explanation_prompts(processor, batch, device):
    """`<bos> the emotion is {emotion} because` for `batch` images, cycling through the single-token emotion names
    (equal lengths: no padding). Everything generated after it is explanation, where the VAD path is active;
    from the bare prompt `<bos> the emotion is` a random-weight model never writes the connector, so the VAD
    fusion would never be switched on (costs are the same either way: fusion and the VAD encoder run on every
    token, and the reference looks up every token)."""
    single = [e for e, ids in zip(processor.emotions, processor.emotion_token_ids) if len(ids) == 1]
    emotions = [single[i % len(single)] for i in range(batch)]
    encoded = processor.encode_prompt(batch, emotions)
    assert bool(encoded["attention_mask"].all()), "prompts must not need padding"
    return {k: v.to(device) for k, v in encoded.items()}


def plain_generate(plain, encoder_hidden_states, prompt, max_new_tokens, **options):
    batch = encoder_hidden_states.shape[0]
    return plain.generate(
        input_ids=prompt["input_ids"][:batch],
        attention_mask=prompt["attention_mask"][:batch],
        token_type_ids=prompt["token_type_ids"][:batch],  # generate() repeats the last (explanation) segment
        encoder_hidden_states=encoder_hidden_states,
        max_new_tokens=max_new_tokens,
        do_sample=False,
        **options,
    )


# ------------------------------------------------------------------------------------- operators per token
# Operators that only describe memory (views, allocations, no-op conversions): no GPU kernel behind them.
METADATA_OPERATORS = frozenset(
    "aten::" + name
    for name in (
        "as_strided view _unsafe_view _reshape_alias reshape flatten unflatten view_as transpose t numpy_T mT permute "
        "expand expand_as select slice narrow unsqueeze squeeze unbind split chunk alias detach detach_ lift_fresh "
        "resolve_conj resolve_neg empty empty_like empty_strided to contiguous is_nonzero"
    ).split()
)


# Matrix products that first copy their additive input into the output: both a copy and the product itself.
PRODUCTS_WITH_INPUT = frozenset(f"aten::{name}" for name in ("addmm", "baddbmm", "addbmm", "addmv", "_addmm_activation"))


def _is_compute(event):
    """Whether an operator does work of its own: not a view or allocation, and not a wrapper whose work is all in
    the operators it calls (`linear` calls `addmm`), except for the products in PRODUCTS_WITH_INPUT."""
    if event.name in METADATA_OPERATORS:
        return False
    calls_compute = any(_is_compute(child) for child in event.cpu_children if child.name.startswith("aten::"))
    return event.name in PRODUCTS_WITH_INPUT or not calls_compute


def operators_per_token(generate, short=2, long=10):
    """(aten operators, compute operators, {operator name: count}) per new token of `generate(new_tokens)`, counted on
    the CPU side with torch.profiler: the difference between a generation of `long` and of `short` new tokens, over
    `long - short`. Compute operators are those `_is_compute` keeps."""
    from collections import Counter

    from torch.profiler import ProfilerActivity, profile

    totals, names = [], []
    for new_tokens in (short, long):
        generate(new_tokens)  # lazy set-up stays out of the count
        with profile(activities=[ProfilerActivity.CPU]) as profiler:
            generate(new_tokens)
        events = [event for event in profiler.events() if event.name.startswith("aten::")]
        totals.append((len(events), sum(map(_is_compute, events))))
        names.append(Counter(event.name for event in events))
    steps = long - short
    by_name = {name: (names[1][name] - names[0][name]) / steps for name in names[0] | names[1]}
    return (*((at_long - at_short) / steps for at_short, at_long in zip(*totals)), by_name)


def demo_size_model(lexicon):
    """(model, processor): the demo model's architecture (configs/demo_*.json) with random weights, on the CPU."""
    from transformers import CLIPVisionConfig, GPT2Config

    vision = CLIPVisionConfig.from_json_file(str(REPO_ROOT / "configs" / "demo_vision.json"))
    text = GPT2Config.from_json_file(str(REPO_ROOT / "configs" / "demo_text.json"))
    texts = [f" the emotion is {e} because {s}" for e in ARTEMIS_EMOTIONS for s in SENTENCES] * 20
    processor = SevlmProcessor.from_vision_text(vision, train_tokenizer(texts, vocab_size=text.vocab_size))
    torch.manual_seed(0)
    model = SevlmForConditionalGeneration.from_vision_text(vision, text, processor, vad_table=build_vad_table(processor.tokenizer, lexicon))
    return model.eval(), processor


def operator_counts(model, processor, batch=1):
    """Operators per new token of (a) SEVLM and (c) the plain captioner: a dict of (aten, compute) pairs."""
    plain = plain_captioner(model)
    prompt = explanation_prompts(processor, batch, model.device)
    size = model.config.vision_config.image_size
    pixels = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        features = model.get_image_features(pixels.to(device=model.device, dtype=model.dtype)).last_hidden_state

        def generate_a(new_tokens):
            return model.generate(
                encoder_hidden_states=features,
                input_ids=prompt["input_ids"],
                attention_mask=prompt["attention_mask"],
                max_new_tokens=new_tokens,
                min_new_tokens=new_tokens,
                do_sample=False,
            )

        def generate_c(new_tokens):
            return plain_generate(plain, features, prompt, new_tokens, min_new_tokens=new_tokens)

        return {"a": operators_per_token(generate_a), "c": operators_per_token(generate_c)}


def operator_rows(counts):
    rows = []
    for label, device, count in counts:
        (a, a_compute, _), (c, c_compute, _) = count["a"], count["c"]
        rows.append([label, device, f"{a:.0f}", f"{c:.0f}", f"{a - c:.0f}", f"{a / c:.2f}",
                     f"{a_compute:.0f}", f"{c_compute:.0f}", f"{a_compute - c_compute:.0f}"])
    return rows


# ------------------------------------------------------------------------------------ compiled vs eager
def where_tokens_part(compiled, eager, prompt_length, dtype):
    """Compare two `generate(..., return_dict_in_generate=True, output_logits=True)` outputs of one model.

    Returns (verdict, detail). "yes": the same tokens. Where they part, at the first new token that differs:
    "near-tie" when compiled and eager logits agree up to there within rounding (a relative 1e-2 in half precision,
    1e-4 in float32, of the largest logit) and the eager run's two best logits there are at most twice that apart, so
    rounding picked the token; "NO" otherwise (a real difference).
    """
    steps = min(len(compiled.logits), len(eager.logits))

    def drift(row, last):
        return max(float((compiled.logits[s][row].float() - eager.logits[s][row].float()).abs().max()) for s in range(last + 1))

    relative = 1e-2 if dtype in (torch.float16, torch.bfloat16) else 1e-4
    length = min(compiled.sequences.shape[1], eager.sequences.shape[1])
    differ = (compiled.sequences[:, :length] != eager.sequences[:, :length]).nonzero()
    if differ.numel() == 0:
        if compiled.sequences.shape != eager.sequences.shape:
            return "NO", f"the tokens agree but the lengths differ ({tuple(compiled.sequences.shape)} vs {tuple(eager.sequences.shape)})"
        worst = max(drift(row, steps - 1) for row in range(compiled.sequences.shape[0]))
        return "yes", f"same tokens; compiled and eager logits differ by up to {worst:.3g}"
    row, step = int(differ[0, 0]), int(differ[0, 1]) - prompt_length
    best_two = eager.logits[step][row].float().topk(2).values
    gap, seen = float(best_two[0] - best_two[1]), drift(row, step)
    tolerance = relative * max(1.0, float(eager.logits[step][row].float().abs().max()))
    verdict = "near-tie" if seen <= tolerance and gap <= 2 * seen else "NO"
    detail = (f"tokens part at row {row}, new token {step}: the eager run's two best logits there are {gap:.3g} apart; "
              f"compiled and eager logits differ by up to {seen:.3g} up to there (rounding allows {tolerance:.3g}) -> "
              + ("a near-tie that rounding decides, not a bug" if verdict == "near-tie" else "a REAL difference"))
    return verdict, detail


class static_cache_runs:
    """(a) with a static cache: `plain` without compilation, `compiled` with the decoding step compiled."""

    def __init__(self, model, prompt, new_tokens, device, backend):
        from transformers import CompileConfig

        self.model, self.prompt, self.new_tokens = model, prompt, new_tokens
        self.compile_config = CompileConfig(fullgraph=True, dynamic=False, backend=backend,
                                            mode="reduce-overhead" if backend == "inductor" and device.type == "cuda" else None)
        # generate() compiles on accelerators by itself; elsewhere only when told to.
        self.compile_config._compile_all_devices = device.type != "cuda"

    def _generate(self, features, **options):
        batch = features.shape[0]
        return self.model.generate(
            encoder_hidden_states=features,
            input_ids=self.prompt["input_ids"][:batch],
            attention_mask=self.prompt["attention_mask"][:batch],
            max_new_tokens=self.new_tokens,
            do_sample=False,
            cache_implementation="static",
            **options,
        )

    def plain(self, features):
        return self._generate(features, disable_compile=True)

    def compiled(self, features):
        return self._generate(features, compile_config=self.compile_config)

    def first_compiled(self, features):
        """Seconds of the first compiled call (compilation included), and `where_tokens_part` of its output against
        the dynamic cache's (eager) output."""
        device = features.device
        batch = features.shape[0]
        with_logits = dict(return_dict_in_generate=True, output_logits=True)
        seconds, compiled = timed(lambda: self._generate(features, compile_config=self.compile_config, **with_logits), device)
        eager = self.model.generate(
            encoder_hidden_states=features,
            input_ids=self.prompt["input_ids"][:batch],
            attention_mask=self.prompt["attention_mask"][:batch],
            max_new_tokens=self.new_tokens,
            do_sample=False,
            **with_logits,
        )
        return seconds, where_tokens_part(compiled, eager, self.prompt["input_ids"].shape[1], self.model.dtype)


def first_mismatch(x, y):
    if x.shape != y.shape:
        return f"shapes {tuple(x.shape)} vs {tuple(y.shape)}"
    diff = (x != y).nonzero()
    return None if diff.numel() == 0 else f"row {int(diff[0, 0])} position {int(diff[0, 1])}"


def print_operator_table(operator_table):
    print("## Operators per new token (greedy, batch 1; torch.profiler, tokens 3-10 of a generation)")
    print("(a) SEVLM generate(); (c) plain GPT-2 with cross-attention; compute = leaf operators that do work "
          "(no views or allocations): the stand-in for GPU kernel launches")
    print(format_table(
        ["model", "device", "(a) ops", "(c) ops", "extra (a)-(c)", "(a)/(c)", "(a) compute", "(c) compute", "extra compute"],
        operator_rows(operator_table),
    ), flush=True)


def print_extra_by_operator(operator_table):
    """Where (a)'s extra operators per new token go: (a) - (c) per aten operator, for each model of the table."""
    for label, _, count in operator_table:
        extra = {name: count["a"][2].get(name, 0) - count["c"][2].get(name, 0) for name in count["a"][2] | count["c"][2]}
        listed = sorted(((n, e) for n, e in extra.items() if abs(e) >= 0.5), key=lambda item: (-item[1], item[0]))
        print(f"extra per new token by operator, {label}: " + ", ".join(f"{name[6:]} {e:+.0f}" for name, e in listed))


def print_operator_target(operator_table, quick):
    for label, _, count in operator_table:
        extra = count["a"][0] - count["c"][0]
        print(f"- extra operators per new token <= 120 ({label}): {extra:.0f} -> {'MET' if extra <= 120 else 'MISSED'}"
              + (" (QUICK sizes)" if quick and "tiny" in label else ""))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--new-tokens", type=int, default=25)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs (at least) of (a) and (c), decode-only")
    parser.add_argument("--pair-seconds", type=float, default=12.0,
                        help="decode-only: repeat (a)/(c) pairs until they total this many seconds (short runs are noisy)")
    parser.add_argument("--ref-repeats", type=int, default=3, help="timed runs of the slow reference loop (b)")
    parser.add_argument("--e2e-repeats", type=int, default=2, help="timed end-to-end runs of (a) and of the CLIP tower")
    parser.add_argument("--ref-batch-limit", type=int, default=None, help="skip (b) above this batch size")
    parser.add_argument("--device", default=os.environ.get("SEVLM_BENCH_DEVICE", "cpu"))
    parser.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    parser.add_argument("--quick", action="store_true", help="tiny model: check the script, not a measurement")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's default)")
    parser.add_argument("--clock", default="wall", choices=["wall", "cpu"],
                        help="wall time (default) or process CPU time (use with --threads 1 on a shared machine)")
    parser.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                        help="before timing, wait up to SECONDS for other processes to leave the CPUs idle")
    parser.add_argument("--skip-e2e", action="store_true")
    parser.add_argument("--static-compile", action="store_true",
                        help="also time (a) with a static cache, without and with torch.compile of the decoding step")
    parser.add_argument("--operators-only", action="store_true",
                        help="only count the operators per new token (demo size on the CPU, and this run's model), no timing")
    parser.add_argument("--skip-operators", action="store_true", help="do not count operators per new token")
    parser.add_argument("--compile-backend", default=None,
                        help="torch.compile backend for --static-compile (default: inductor; aot_eager with --quick on a "
                        "CPU, which traces the same graph without inductor's slow CPU code generation)")
    args = parser.parse_args()

    wall = time.perf_counter()
    set_clock(args.clock, args.threads)
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    print("# bench_generate: SEVLM generation throughput" + (" (QUICK: tiny sizes, not a measurement)" if args.quick else ""))
    for line in machine_lines(device):
        print(line)
    print(f"load average at start: {os.getloadavg()[0]:.2f}")

    model, processor, lexicon, source, build_s = build_model(quick=args.quick)
    with torch.no_grad():
        # The fusion starts as identity on the embedding and zero on the VAD features (VAD ignored at step 0);
        # random VAD columns make the VAD path change the tokens, so the checks below test it.
        model.vad_fusion.weight[:, -3:].normal_(0.0, 0.3, generator=torch.Generator().manual_seed(1))
    model.to(device=device, dtype=dtype)
    plain = plain_captioner(model)
    tokenizer = processor.tokenizer
    print(f"model built from configs in {build_s:.1f} s (random weights); VAD lexicon: {source.name} ({len(lexicon)} words)")
    print(f"tokenizer: byte-level BPE trained offline, {len(tokenizer)} tokens; VAD table hits: "
          f"{int((model.vad_table.abs().sum(-1) > 0).sum())}")
    print("parameters: " + ", ".join(f"{k} {v / 1e6:.1f}M" for k, v in parameter_summary(model).items()))
    print(f"plain captioner (c): GPT2LMHeadModel with cross-attention, {sum(p.numel() for p in plain.parameters()) / 1e6:.1f}M")

    operator_table = []
    if not args.skip_operators:
        demo, demo_processor = demo_size_model(source)
        operator_table.append(("demo size (configs/demo_*.json)", "cpu", operator_counts(demo, demo_processor)))
        label = "tiny (--quick)" if args.quick else "real size (ViT-B/16 + distilGPT-2)"
        operator_table.append((label, device.type, operator_counts(model, processor)))
        print_operator_table(operator_table)
        print_extra_by_operator(operator_table)
    if args.operators_only:
        print_operator_target(operator_table, args.quick)
        return

    reference = ReferenceDecoder(model, tokenizer, lexicon, causal=False)
    new = args.new_tokens
    image_size = model.config.vision_config.image_size
    largest = max(args.batch_sizes)
    generator = torch.Generator().manual_seed(0)
    pixel_values = torch.randn(largest, 3, image_size, image_size, generator=generator).to(device=device, dtype=dtype)

    prompt = explanation_prompts(processor, largest, device)
    prompt_length = prompt["input_ids"].shape[1]
    print(f"prompt: {processor.decode(prompt['input_ids'][0])!r} ... ({prompt_length} tokens, emotions cycled)")

    def gen_a(features=None, pixel_values=None):
        batch = (features if features is not None else pixel_values).shape[0]
        return model.generate(
            encoder_hidden_states=features,
            pixel_values=pixel_values,
            input_ids=prompt["input_ids"][:batch],
            attention_mask=prompt["attention_mask"][:batch],
            max_new_tokens=new,
            do_sample=False,
        )

    def gen_c(features):
        return plain_generate(plain, features, prompt, new)

    def gen_b(features, causal=False, scores=None):
        decoder = reference if not causal else ReferenceDecoder(model, tokenizer, lexicon, causal=True)
        return decoder.generate(features, prompt, max_new_tokens=new, scores=scores)

    if args.wait_quiet:
        wait_for_quiet(args.wait_quiet)
    with torch.inference_mode():
        features = model.get_image_features(pixel_values).last_hidden_state
        # --------------------------------------------------------------------------------------- checks
        checks = []
        check_batch = min(8, largest)
        f = features[:check_batch]
        tokens_c = gen_c(f)
        model.config.use_vad_embedding = False
        try:
            tokens_a_off = gen_a(f)
        finally:
            model.config.use_vad_embedding = True
        mismatch = first_mismatch(tokens_a_off, tokens_c)
        checks.append((f"(a) VAD fusion off == (c), batch {check_batch}, greedy", "identical tokens" if mismatch is None else f"DIFFER at {mismatch}"))
        small = f[: min(2, check_batch)]
        out_a = model.generate(
            encoder_hidden_states=small,
            input_ids=prompt["input_ids"][: small.shape[0]],
            attention_mask=prompt["attention_mask"][: small.shape[0]],
            max_new_tokens=new,
            do_sample=False,
            output_scores=True,
            return_dict_in_generate=True,
        )
        tokens_a, scores_a = out_a.sequences, torch.stack([x.float().cpu() for x in out_a.scores], 1)
        steps_causal, steps_bidir = [], []
        tokens_b_causal = gen_b(small, causal=True, scores=steps_causal)
        mismatch = first_mismatch(tokens_a, tokens_b_causal)
        gap = (torch.stack(steps_causal, 1) - scores_a).abs().max().item() if mismatch is None else float("nan")
        checks.append((f"(b) loop with the causal encoder == (a), batch {small.shape[0]}",
                       f"identical tokens, max |logit difference| {gap:.1e}" if mismatch is None else f"DIFFER at {mismatch}"))
        vad_python = torch.tensor([reference.token_vad(row) for row in tokens_a.tolist()], dtype=model.vad_table.dtype)
        same_vad = torch.allclose(vad_python, model.vad_table[tokens_a].cpu())
        checks.append(("Python lexicon look-up == on-device VAD table (same tokens)", "equal" if same_vad else "DIFFER"))
        tokens_b = gen_b(small, scores=steps_bidir)
        if first_mismatch(tokens_a, tokens_b) is None:
            gap = (torch.stack(steps_bidir, 1) - scores_a).abs().max().item()
            verdict = f"identical tokens, logits differ by up to {gap:.1e} (the VAD path is live)"
        else:
            verdict = "different tokens (a different model)"
        checks.append((f"(b) bidirectional encoder vs (a) causal, batch {small.shape[0]}", verdict))

        # ------------------------------------------------------------------------------------- warm-up
        for fn in (gen_a, gen_c, gen_b):
            fn(features[:1])

        # ---------------------------------------------------------------------------------- decode-only
        # Per batch size: one untimed run of (a) and (c), then timed (a)/(c) pairs in alternating order (a c, c a,
        # ...), so that drift and the previous block's memory state hit both alike; then the (b) block.
        decode = {}
        generated_ok = True

        def run(key, fn, *fn_args, **fn_kwargs):
            nonlocal generated_ok
            seconds, out = timed(lambda: fn(*fn_args, **fn_kwargs), device)
            generated_ok &= out.shape[1] - prompt_length == new
            return seconds

        for batch in args.batch_sizes:
            f = features[:batch]
            times = {"a": [], "c": [], "b": []}
            gen_a(f)
            gen_c(f)
            # At least --repeats pairs, more for short runs (until --pair-seconds of timed (a)+(c)), at most 25.
            r = 0
            while r < args.repeats or (sum(times["a"]) + sum(times["c"]) < args.pair_seconds and r < 25):
                order = (("a", gen_a), ("c", gen_c)) if r % 2 == 0 else (("c", gen_c), ("a", gen_a))
                for key, fn in order:
                    times[key].append(run(key, fn, f))
                r += 1
            if args.ref_batch_limit is None or batch <= args.ref_batch_limit:
                for _ in range(args.ref_repeats):
                    times["b"].append(run("b", gen_b, f))
            decode[batch] = times
            print(f"  decode-only batch {batch}: " + ", ".join(f"{k} {median(v):.3f} s (n={len(v)})" for k, v in times.items() if v), flush=True)

        # ----------------------------------------------------------------------------------- end-to-end
        # (a) `generate(pixel_values=...)` timed directly, alternating with the CLIP tower alone. (b) and (c) encode
        # the images with the same single CLIP forward and then decode: their end-to-end time is the image encoding
        # plus their decode-only time (composed, to keep the script under 5 minutes).
        e2e = {}
        if not args.skip_e2e:
            for batch in args.batch_sizes:
                pv = pixel_values[:batch]
                times = {"vision": [], "a": []}
                for r in range(args.e2e_repeats):
                    if r % 2:
                        times["a"].append(run("a", gen_a, pixel_values=pv))
                    times["vision"].append(timed(lambda pv=pv: model.get_image_features(pv).last_hidden_state, device)[0])
                    if r % 2 == 0:
                        times["a"].append(run("a", gen_a, pixel_values=pv))
                e2e[batch] = times
                print(f"  end-to-end batch {batch}: " + ", ".join(f"{k} {median(v):.3f} s" for k, v in times.items()), flush=True)

        # ------------------------------------------------------------------------- static cache + compile
        static = {}
        if args.static_compile:
            backend = args.compile_backend or ("aot_eager" if args.quick and device.type == "cpu" else "inductor")
            static_runs = static_cache_runs(model, prompt, new, device, backend)
            for batch in args.batch_sizes:
                f = features[:batch]
                first, same = static_runs.first_compiled(f)
                times = {"a": [], "static": [], "compiled": []}
                variants = [("a", gen_a), ("static", static_runs.plain), ("compiled", static_runs.compiled)]
                for r in range(args.repeats):
                    for key, fn in variants if r % 2 == 0 else variants[::-1]:
                        times[key].append(run(key, fn, f))
                static[batch] = (times, first, same)
                print(f"  static cache batch {batch}: first compiled call {first:.1f} s, "
                      + ", ".join(f"{k} {median(v):.4f} s" for k, v in times.items()), flush=True)
    synchronize(device)

    # --------------------------------------------------------------------------------------------- report
    print()
    print("## Checks")
    for name, result in checks:
        print(f"- {name}: {result}")
    print(f"- every timed run generated exactly {new} new tokens per row: {'yes' if generated_ok else 'NO'}")
    print()
    print(f"## Decode-only (image features given), greedy, {new} new tokens, {args.dtype}, {device.type}; "
          "times are medians per batch, expl/s = batch / time;")
    print("(b)/(a) = ratio of the medians; (a)/(c) = median of the ratios of adjacent (a), (c) runs")
    rows = []
    for batch, times in decode.items():
        a, c, b = median(times["a"]), median(times["c"]), median(times["b"])
        ratios = [x / y for x, y in zip(times["a"], times["c"])]
        paired = median(ratios)
        rows.append([
            batch,
            f"{a:.3f}", f"{batch / a:.1f}",
            f"{b:.3f}" if times["b"] else "-", f"{batch / b:.2f}" if times["b"] else "-",
            f"{c:.3f}", f"{batch / c:.1f}",
            f"{b / a:.1f}" if times["b"] else "-",
            f"{paired:.3f}",
            f"{min(ratios):.2f}-{max(ratios):.2f}",
            f"{len(times['a'])}/{len(times['b'])}/{len(times['c'])}",
        ])
    print(format_table(
        ["batch", "(a) s", "(a) expl/s", "(b) s", "(b) expl/s", "(c) s", "(c) expl/s", "(b)/(a)", "(a)/(c)", "(a)/(c) range",
         "runs a/b/c"], rows
    ))
    if e2e:
        print()
        print("## End-to-end (from pixel values; the CLIP ViT-B/16 tower runs once per batch in every variant)")
        print("(a) = `generate(pixel_values=...)` timed directly; (b), (c) = median image encoding + their decode-only "
              "median (the same single CLIP forward, then their decoding)")
        rows = []
        for batch, times in e2e.items():
            a, v = median(times["a"]), median(times["vision"])
            c = v + median(decode[batch]["c"])
            b = v + median(decode[batch]["b"]) if decode[batch]["b"] else None
            rows.append([
                batch, f"{v:.3f}",
                f"{a:.3f}", f"{batch / a:.1f}",
                f"{b:.3f}" if b else "-", f"{batch / b:.2f}" if b else "-",
                f"{c:.3f}", f"{batch / c:.1f}",
                f"{b / a:.1f}" if b else "-",
                f"{a / c:.3f}",
                len(times["a"]),
            ])
        print(format_table(
            ["batch", "image enc s", "(a) s", "(a) expl/s", "(b) s", "(b) expl/s", "(c) s", "(c) expl/s", "(b)/(a)", "(a)/(c)", "runs"],
            rows,
        ))
    if static:
        print()
        print(f"## Static cache + torch.compile (decode-only, greedy, {new} new tokens, {args.dtype}, {device.type}, "
              f"backend {backend}); medians")
        print("dynamic = (a) as above; static = cache_implementation='static', not compiled; compiled = static cache with "
              "the decoding step compiled (first call, with compilation, reported apart)")
        rows, details = [], []
        for batch, (times, first, (same, detail)) in static.items():
            a, st, co = (median(times[k]) for k in ("a", "static", "compiled"))
            rows.append([
                batch, f"{a:.4f}", f"{batch / a:.1f}", f"{st:.4f}", f"{batch / st:.1f}", f"{co:.4f}", f"{batch / co:.1f}",
                f"{a / co:.2f}", f"{first:.1f}", same, len(times["a"]),
            ])
            details.append(f"- batch {batch}: {detail}")
        print(format_table(
            ["batch", "dynamic s", "expl/s", "static s", "expl/s", "compiled s", "expl/s", "dynamic/compiled",
             "first call s", "same tokens", "runs"],
            rows,
        ))
        print("same tokens: yes; near-tie (they part where the eager run's two best logits are closer than rounding moves "
              "them: rounding decides); NO (a real difference)")
        for line in details:
            print(line)
    if operator_table:
        print()
        print_operator_table(operator_table)
    print()
    print(f"## Targets (set for the 2-core CPU; this run: {device.type})"
          + (" -- QUICK run: tiny sizes, verdicts meaningless" if args.quick else ""))
    if largest in decode and decode[largest]["b"]:
        ratio = median(decode[largest]["b"]) / median(decode[largest]["a"])
        print(f"- (b)/(a) >= 10 at batch {largest}, decode-only: {ratio:.1f} -> {'MET' if ratio >= 10 else 'MISSED'}")
    worst = max(median([x / y for x, y in zip(t["a"], t["c"])]) for t in decode.values())
    print(f"- (a)/(c) <= 1.15 (worst batch, decode-only): {worst:.3f} -> {'MET' if worst <= 1.15 else 'MISSED'}")
    print_operator_target(operator_table, args.quick)
    print(foreign_load_line())
    print(f"load average at end: {os.getloadavg()[0]:.2f}; total wall time {time.perf_counter() - wall:.0f} s")


if __name__ == "__main__":
    main()
