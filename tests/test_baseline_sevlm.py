"""sevlm-baseline: answers parsed from free text, and a tiny random LLaVA (CLIP vision + Llama text, built from
configs with a locally trained tokenizer and a chat template; nothing downloaded) through sevlm-baseline and then
eval_sevlm.py --predictions_file."""

import json
import unicodedata

import pytest
import torch
from helpers import EXPLANATIONS
from test_statistics_sevlm import fake_caption_statistics, make_corpus
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    CLIPImageProcessor,
    CLIPVisionConfig,
    LlamaConfig,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaProcessor,
    PreTrainedTokenizerFast,
)

import eval_sevlm
import sevlm.evaluation.run as evaluation
from configuration_sevlm import ARTEMIS_EMOTIONS
from sevlm.cli.baseline import main
from sevlm.evaluation import metric as sevlm_metric
from sevlm.evaluation.baseline import INSTRUCTION, build_prompt, find_emotion, parse_answer

E = list(ARTEMIS_EMOTIONS)


# --------------------------------------------------------------------------------------------------- parsing
@pytest.mark.parametrize(
    "answer, emotion, explanation",
    [
        ("Emotion: Awe\nReason: The mountain is huge and majestic.", "awe", "The mountain is huge and majestic."),
        ("**Emotion:** something_else\n**Reason:** it is strange", "something else", "it is strange"),
        ("I feel sadness because the woman looks lonely.", "sadness", "the woman looks lonely."),
        ("Contentment. The sky is calm and peaceful.", "contentment", "The sky is calm and peaceful."),
        (
            "Emotion: anger\nReason: the faces show fear and rage",
            "anger",
            "the faces show fear and rage",
        ),  # the label wins
        ("Awe, maybe fear", "awe", "maybe fear"),  # the first emotion named
        ("Something else: odd shapes", "something else", "odd shapes"),
        ("Emotion: awe", "awe", ""),
        ("The colours are\n  gloomy.", None, "The colours are gloomy."),  # no emotion: the whole answer, on one line
        ("awesome colours", None, "awesome colours"),  # whole words only: "awesome" is not "awe"
    ],
)
def test_parse_answer(answer, emotion, explanation):
    assert parse_answer(answer, E) == (emotion, explanation)


def test_names_follow_the_project_name_rule():
    emotions = ["delighted", "so-so", "très déçu"]
    # NFD, upper case, doubled space; `_` read as a space
    assert parse_answer(unicodedata.normalize("NFD", "Emotion: TRÈS  DÉÇU\nReason: grey"), emotions) == (
        "très déçu",
        "grey",
    )
    assert find_emotion("so-so, I think", emotions) == "so-so"
    assert find_emotion("feeling so_so", ["so so"]) == "so so"
    assert (
        find_emotion("something else entirely", ["something", "something else"]) == "something else"
    )  # the longer name


# ------------------------------------------------------------------------------------------------ tiny LLaVA
ANSWER = "Emotion: awe\nReason: the mountain is huge and majestic"
CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] | upper }}: {% for item in message['content'] %}"
    "{% if item['type'] == 'image' %}<image>{{ '\\n' }}{% else %}{{ item['text'] }}{% endif %}{% endfor %}{{ '\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)


def tiny_llava(emotions=E, seed=0):
    """(model, processor): LlavaForConditionalGeneration with a 2-layer CLIP vision tower and a 2-layer Llama, random
    weights, and a byte-level BPE tokenizer trained here with a LLaVA-1.5-style chat template."""
    texts = [INSTRUCTION.replace("{emotions}", ", ".join(emotions)), ANSWER, *EXPLANATIONS, "USER: ASSISTANT:"] * 20
    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(
        texts,
        trainers.BpeTrainer(
            vocab_size=400,
            special_tokens=["<unk>", "<s>", "</s>", "<pad>", "<image>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        extra_special_tokens={"image_token": "<image>"},
    )
    image_processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        chat_template=CHAT_TEMPLATE,
        patch_size=8,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
    )
    vision = CLIPVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=32, patch_size=8
    )
    text = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=256,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=3,
    )
    config = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
    )
    torch.manual_seed(seed)
    return LlavaForConditionalGeneration(config).eval(), processor


def teach_answer(model, processor, images, steps=60):
    """Train the tiny model to answer ANSWER to the baseline's prompt, whatever the painting."""
    prompt = build_prompt(processor, INSTRUCTION, E)
    batch = processor(
        images=[[image] for image in images], text=[prompt + " " + ANSWER + "</s>"] * len(images), return_tensors="pt"
    )
    prompt_length = processor(images=[[images[0]]], text=[prompt], return_tensors="pt")["input_ids"].shape[1]
    labels = batch["input_ids"].clone()
    labels[:, :prompt_length] = -100
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        loss = model(**batch, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return model.eval()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp("baseline") / "data", styles=["Baroque"] * 6)


def save(model, processor, path):
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


def run_eval(predictions, corpus, output_dir):
    return evaluation.evaluate_model(
        eval_sevlm.parse_arguments(
            [
                "--predictions_file",
                str(predictions),
                "--dataset_path",
                str(corpus),
                "--output_dir",
                str(output_dir),
                "--bootstrap",
                "100",
            ]
        )
    )


def test_a_random_vlm_through_baseline_and_eval(corpus, tmp_path, monkeypatch):
    """A random model names no emotion: every answer is kept (emotion "", its text as the explanation) and counted,
    and eval scores all of them."""
    model_dir = save(*tiny_llava(), tmp_path / "llava")
    out = tmp_path / "out"
    assert (
        main(
            [
                "--model_name_or_path",
                str(model_dir),
                "--dataset_path",
                str(corpus),
                "--output_dir",
                str(out),
                "--batch_size",
                "4",
                "--max_new_tokens",
                "8",
            ]
        )
        == 0
    )
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    summary = json.loads((out / "baseline_summary.json").read_text())
    assert [row["painting_id"] for row in rows] == [f"Baroque/p{i}" for i in range(6)]
    assert summary["num_paintings"] == 6 and summary["num_unparsed_emotions"] == sum(
        not row["emotion_parsed"] for row in rows
    )
    unparsed = [row for row in rows if not row["emotion_parsed"]]
    assert unparsed and all(
        row["emotion"] == "" and row["explanation"] == " ".join(row["raw_answer"].split()).strip(" \"'*")
        for row in unparsed
    )
    assert "ASSISTANT:" in summary["prompt"] and "amusement, awe, contentment" in summary["prompt"]
    monkeypatch.setattr(sevlm_metric, "caption_statistics", fake_caption_statistics)
    metrics = run_eval(out / "predictions.jsonl", corpus, tmp_path / "eval")
    assert metrics["num_paintings"] == 6 and metrics["num_invalid_emotions"] == len(unparsed)


def test_a_vlm_that_answers_through_baseline_and_eval(corpus, tmp_path):
    """A tiny LLaVA taught to answer "Emotion: awe / Reason: ...": parsed answers, scored by eval exactly as SEVLM's
    predictions are (real caption metrics)."""
    from datasets import load_from_disk

    images = load_from_disk(str(corpus))["test"]["image"]
    model, processor = tiny_llava()
    model_dir = save(teach_answer(model, processor, images), processor, tmp_path / "llava")
    out = tmp_path / "out"
    assert (
        main(
            [
                "--model_name_or_path",
                str(model_dir),
                "--dataset_path",
                str(corpus),
                "--output_dir",
                str(out),
                "--batch_size",
                "4",
                "--max_samples",
                "5",
            ]
        )
        == 0
    )
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 5 and all(row["emotion"] == "awe" and row["emotion_parsed"] for row in rows)
    assert all(row["explanation"] == "the mountain is huge and majestic" for row in rows)
    assert json.loads((out / "baseline_summary.json").read_text())["num_unparsed_emotions"] == 0
    metrics = run_eval(out / "predictions.jsonl", corpus, tmp_path / "eval")
    # paintings 0..4: majorities amusement, awe, contentment, excitement, amusement; "awe" is right once
    assert metrics["num_paintings"] == 5 and metrics["emotion_accuracy"] == pytest.approx(1 / 5)
    assert metrics["num_invalid_emotions"] == 0 and 0 <= metrics["bleu_4"] <= 1 and metrics["meteor"] > 0
    assert metrics["unique"] == pytest.approx(1 / 5)
    # an earlier run is replaced only when asked
    assert (
        main(
            [
                "--model_name_or_path",
                str(model_dir),
                "--dataset_path",
                str(corpus),
                "--output_dir",
                str(out),
                "--max_samples",
                "1",
            ]
        )
        == 1
    )
    assert len((out / "predictions.jsonl").read_text().splitlines()) == 5


def test_clear_errors(corpus, tmp_path, capsys):
    from helpers import build_tiny

    base = ["--dataset_path", str(corpus), "--output_dir", str(tmp_path / "out")]
    model, processor = build_tiny()
    save(model, processor, tmp_path / "sevlm")
    assert main(["--model_name_or_path", str(tmp_path / "sevlm"), *base]) == 1
    assert "is a SEVLM model: evaluate it with sevlm-eval" in capsys.readouterr().err
    from transformers import GPT2Config, GPT2LMHeadModel

    GPT2LMHeadModel(GPT2Config(n_embd=16, n_layer=1, n_head=2, vocab_size=50)).save_pretrained(tmp_path / "text-only")
    assert main(["--model_name_or_path", str(tmp_path / "text-only"), *base]) == 1
    assert "(gpt2) is not an image-text-to-text model" in capsys.readouterr().err
    assert (
        main(
            [
                "--model_name_or_path",
                str(tmp_path / "llava"),
                *base,
                "--batch_size",
                "0",
                "--instruction",
                "Which emotion?",
            ]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert "--batch_size must be at least 1" in err and "--instruction must contain {emotions}" in err
    assert (
        main(
            [
                "--model_name_or_path",
                str(tmp_path / "llava"),
                "--dataset_path",
                str(tmp_path / "missing"),
                "--output_dir",
                str(tmp_path / "o"),
            ]
        )
        == 1
    )
    assert "No prepared corpus" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
