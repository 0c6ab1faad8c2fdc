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

With `--static-compile`, also (a) with a static KV cache, without and with `torch.compile` of the decoding step
(`generate(cache_implementation="static")`, which compiles by itself on a GPU: inductor, CUDA graphs), against (a)
with the default dynamic cache, decode-only; the first compiled call (compilation included) is reported apart, and
the compiled tokens are checked against the dynamic-cache ones.

    python3 bench/bench_generate.py                # the default run (under 5 minutes on 2 quiet CPU cores)
    python3 bench/bench_generate.py --repeats 5 --ref-repeats 5 --e2e-repeats 5   # the documented medians
    python3 bench/bench_generate.py --quick        # tiny sizes: checks the script only
    python3 bench/bench_generate.py --device cuda --dtype float16 --batch-sizes 1 64 --static-compile --skip-e2e
    python3 bench/bench_generate.py --quick --static-compile --batch-sizes 1 4    # the same on CPU, tiny sizes
"""

import argparse
import os
import time

from _common import (  # noqa: E402
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

from sevlm.vad import lookup_vad  # noqa: E402

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


def plain_generate(plain, encoder_hidden_states, prompt, max_new_tokens):
    batch = encoder_hidden_states.shape[0]
    return plain.generate(
        input_ids=prompt["input_ids"][:batch],
        attention_mask=prompt["attention_mask"][:batch],
        token_type_ids=prompt["token_type_ids"][:batch],  # generate() repeats the last (explanation) segment
        encoder_hidden_states=encoder_hidden_states,
        max_new_tokens=max_new_tokens,
        do_sample=False,
    )


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
        """Seconds of the first compiled call (compilation included), and whether its tokens equal the dynamic cache's."""
        device = features.device
        seconds, tokens = timed(lambda: self.compiled(features), device)
        dynamic = self.model.generate(
            encoder_hidden_states=features,
            input_ids=self.prompt["input_ids"][: features.shape[0]],
            attention_mask=self.prompt["attention_mask"][: features.shape[0]],
            max_new_tokens=self.new_tokens,
            do_sample=False,
        )
        return seconds, first_mismatch(tokens, dynamic) is None


def first_mismatch(x, y):
    if x.shape != y.shape:
        return f"shapes {tuple(x.shape)} vs {tuple(y.shape)}"
    diff = (x != y).nonzero()
    return None if diff.numel() == 0 else f"row {int(diff[0, 0])} position {int(diff[0, 1])}"


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
                    times["vision"].append(timed(lambda: model.get_image_features(pv).last_hidden_state, device)[0])
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
        rows = []
        for batch, (times, first, same) in static.items():
            a, st, co = (median(times[k]) for k in ("a", "static", "compiled"))
            rows.append([
                batch, f"{a:.4f}", f"{batch / a:.1f}", f"{st:.4f}", f"{batch / st:.1f}", f"{co:.4f}", f"{batch / co:.1f}",
                f"{a / co:.2f}", f"{first:.1f}", "yes" if same else "NO", len(times["a"]),
            ])
        print(format_table(
            ["batch", "dynamic s", "expl/s", "static s", "expl/s", "compiled s", "expl/s", "dynamic/compiled",
             "first call s", "same tokens", "runs"],
            rows,
        ))
    print()
    print(f"## Targets (set for the 2-core CPU; this run: {device.type})"
          + (" -- QUICK run: tiny sizes, verdicts meaningless" if args.quick else ""))
    if largest in decode and decode[largest]["b"]:
        ratio = median(decode[largest]["b"]) / median(decode[largest]["a"])
        print(f"- (b)/(a) >= 10 at batch {largest}, decode-only: {ratio:.1f} -> {'MET' if ratio >= 10 else 'MISSED'}")
    worst = max(median([x / y for x, y in zip(t["a"], t["c"])]) for t in decode.values())
    print(f"- (a)/(c) <= 1.15 (worst batch, decode-only): {worst:.3f} -> {'MET' if worst <= 1.15 else 'MISSED'}")
    print(foreign_load_line())
    print(f"load average at end: {os.getloadavg()[0]:.2f}; total wall time {time.perf_counter() - wall:.0f} s")


if __name__ == "__main__":
    main()
