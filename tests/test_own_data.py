"""A taxonomy of one's own, end to end with the documented commands: prepare -> train -> eval -> predict -> publish,
for a CSV of (image, emotion, explanation) and for the built-in product-reviews demo; the pipeline then answers in
the corpus's own classes."""

import csv
import json
import os

import numpy as np
import pytest
from helpers import REPO_ROOT
from PIL import Image

import eval_sevlm
from dataset_scripts import prepare_corpus
from sevlm.cli import predict as predict_sevlm
from sevlm.cli import publish as publish_sevlm
from sevlm.data.demo import make_demo_corpus
from sevlm.hub import verify_folder
from train_sevlm import train

EMOTIONS = ["delighted", "satisfied", "mixed feelings", "très déçu"]  # multi-word and non-ASCII names
COLORS = {"delighted": (240, 200, 40), "satisfied": (60, 170, 80), "mixed feelings": (150, 150, 150), "très déçu": (40, 60, 160)}
WORDS = {
    "delighted": ["gorgeous glaze made my day", "i love the bright color"],
    "satisfied": ["a solid mug that does the job", "works as expected"],
    "mixed feelings": ["looks fine but the handle wobbles", "nice color but too small"],
    "très déçu": ["cracked after one week", "the blue paint peels off"],
}
# Few steps of a tiny model: the checks are about the plumbing and the taxonomy, not about quality.
QUICK = ["--max_steps", "4", "--eval_steps", "2", "--save_steps", "2", "--eval_strategy", "steps", "--save_strategy", "steps",
         "--max_eval_paintings", "4", "--per_device_train_batch_size", "8", "--per_device_eval_batch_size", "8",
         "--logging_steps", "1", "--generation_max_new_tokens", "6"]  # fmt: skip


def write_reviews(folder, items_per_class=10, seed=0):
    """photos/<class>-<n>.png (a coloured square with noise) and annotations.csv with 2 annotations per photo."""
    rng = np.random.default_rng(seed)
    (folder / "photos").mkdir(parents=True)
    rows = []
    for number in range(items_per_class):
        for index, emotion in enumerate(EMOTIONS):
            pixels = np.clip(np.array(COLORS[emotion]) + rng.normal(0, 12, (20, 20, 3)), 0, 255).astype(np.uint8)
            name = f"photos/item-{number:02d}-{index}.png"
            Image.fromarray(pixels).save(folder / name)
            minority = EMOTIONS[(index + 1) % len(EMOTIONS)] if number % 3 == 0 else emotion
            rows.append((name, emotion, WORDS[emotion][number % 2]))
            rows.append((name, minority, WORDS[minority][(number + 1) % 2]))
    with open(folder / "annotations.csv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "emotion", "explanation"])
        writer.writerows(rows)
    return folder / "annotations.csv"


def check_predict_and_publish(model_dir, images, tmp_path, emotions):
    """sevlm-predict on the images, then a Hub folder verified in a fresh process; the pipeline's classes."""
    output = tmp_path / "predictions.jsonl"
    assert predict_sevlm.main([*map(str, images), "--model_name_or_path", str(model_dir), "--output", str(output),
                               "--cards", str(tmp_path / "cards"), "--device", "cpu", "--no_progress"]) == 0  # fmt: skip
    rows = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == len(images) and all(list(row["scores"]) == emotions and row["emotion"] in emotions for row in rows)
    assert all((tmp_path / "cards" / os.path.basename(row["card"])).is_file() for row in rows)
    hub = tmp_path / "hub"
    assert publish_sevlm.main([str(model_dir), "--output_dir", str(hub), "--dataset", "My product reviews"]) == 0
    card = (hub / "README.md").read_text(encoding="utf-8")
    assert "My product reviews" in card and "ArtEmis" not in card
    for name in emotions:
        assert name in card
    # --verify's check: the Hub folder loaded in a fresh process answers in its own classes through
    # pipeline("art-emotion").
    verified = verify_folder(hub, images=[images[0]])
    result = verified["pipeline_results"][0]
    assert list(result["scores"]) == emotions and result["emotion"] in emotions


@pytest.mark.slow
def test_a_csv_of_ones_own_end_to_end(tmp_path, monkeypatch):
    """The commands of the README's "Your own data" section, on a generated CSV and photo folder."""
    monkeypatch.chdir(tmp_path)
    annotations = write_reviews(tmp_path / "my-reviews")
    # 1. prepare
    assert prepare_corpus.main(["--input", str(annotations), "--emotions", ",".join(EMOTIONS), "--output_dir", "data/my-reviews"]) == 0
    # 2. train a small model from configs (the CPU variant of the section; the classes come from the corpus)
    metrics = train(["--args_file", str(REPO_ROOT / "configs" / "demo-product.args"), "--dataset_path", "data/my-reviews",
                     "--make_demo_corpus", "false", "--output_dir", "outputs/my-reviews", "--no_vad",
                     "--vision_model_name_or_path", str(REPO_ROOT / "configs" / "demo_vision.json"),
                     "--text_model_name_or_path", str(REPO_ROOT / "configs" / "demo_text.json"), *QUICK])  # fmt: skip
    assert "test_emotion_accuracy" in metrics
    config = json.loads((tmp_path / "outputs" / "my-reviews" / "config.json").read_text(encoding="utf-8"))
    assert config["emotions"] == EMOTIONS and config["prompt_text"] == " the customer feels"
    # 3. evaluate (the EA classifier is trained on the corpus's own classes first)
    assert eval_sevlm.main(["--model_name_or_path", "outputs/my-reviews", "--dataset_path", "data/my-reviews",
                            "--max_new_tokens", "6"]) == 0  # fmt: skip
    evaluated = json.loads((tmp_path / "outputs" / "eval" / "my-reviews" / "test" / "metrics.json").read_text())
    assert set(evaluated["per_emotion_accuracy"]) == set(EMOTIONS) and 0 <= evaluated["emotion_accuracy"] <= 1
    assert "NLX-GPT" not in (tmp_path / "outputs" / "eval" / "my-reviews" / "test" / "report.md").read_text(encoding="utf-8")
    # 4. predict and 5. publish
    images = sorted((tmp_path / "my-reviews" / "photos").glob("*.png"))[:3]
    check_predict_and_publish(tmp_path / "outputs" / "my-reviews", images, tmp_path, EMOTIONS)


@pytest.mark.slow
def test_the_product_reviews_demo_end_to_end(tmp_path):
    """configs/demo-product.args on the built-in product-reviews corpus (cut short), then eval, predict, publish."""
    from datasets import load_from_disk

    corpus = tmp_path / "demo-product"
    make_demo_corpus(output_dir=str(corpus), num_paintings=60, seed=3, taxonomy="product-reviews")
    output = tmp_path / "sevlm-demo-product"
    train(["--args_file", str(REPO_ROOT / "configs" / "demo-product.args"), "--dataset_path", str(corpus),
           "--vad_lexicon", str(corpus / "demo_vad_lexicon.txt"), "--output_dir", str(output),
           "--vision_model_name_or_path", str(REPO_ROOT / "configs" / "demo_vision.json"),
           "--text_model_name_or_path", str(REPO_ROOT / "configs" / "demo_text.json"), *QUICK])  # fmt: skip
    emotions = json.loads((output / "config.json").read_text(encoding="utf-8"))["emotions"]
    from sevlm.data.schema import corpus_emotions

    assert emotions == corpus_emotions(load_from_disk(str(corpus))["train"]) and len(emotions) in (4, 5, 6)
    assert eval_sevlm.main(["--model_name_or_path", str(output), "--dataset_path", str(corpus), "--output_dir",
                            str(tmp_path / "eval"), "--max_new_tokens", "6"]) == 0  # fmt: skip
    assert set(json.loads((tmp_path / "eval" / "metrics.json").read_text())["per_emotion_accuracy"]) == set(emotions)
    images = []
    for index, row in enumerate(load_from_disk(str(corpus))["test"].select(range(2))):
        images.append(tmp_path / f"product-{index}.png")
        row["image"].save(images[-1])
    check_predict_and_publish(output, images, tmp_path, emotions)


@pytest.mark.parametrize("name", ["demo-product.args", "demo.args"])
def test_demo_args_files_parse(name):
    from train_sevlm import parse_arguments

    model_args, data_args, _ = parse_arguments(["--args_file", str(REPO_ROOT / "configs" / name)])
    assert data_args.make_demo_corpus
    if name == "demo-product.args":
        assert data_args.demo_taxonomy == "product-reviews" and model_args.prompt_text == " the customer feels"
