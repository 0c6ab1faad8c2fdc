"""Produce the screenshots of docs/CURATORS.md from the demo model, in one run (Playwright and Chromium needed).

    sevlm-train && python docs/make_curator_images.py          # from the repository root

A small exhibition is made from the first 30 paintings of the demo test split: their files, and a works.csv with each
painting's title and style (the corpus's `painting` and `art_style`) and a room (an example hang: ten works per room).
The script indexes them with that metadata, writes the portrait of the collection with a route through the three
rooms, starts the web app on them, and takes the screenshots (docs/images/curators-*.png, 256 colours, each under
200 KB). Everything but the screenshots goes into a temporary folder.
"""

import csv
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "outputs" / "sevlm-demo"
CORPUS = ROOT / "data" / "demo"
IMAGES = ROOT / "docs" / "images"
WORKS = 30
ROOMS = ("Room 1", "Room 2", "Room 3")
PORT = 7871
VIEWPORT = {"width": 1200, "height": 900}


def make_collection(folder):
    """The works' files, works.csv and a route (every third work), from the demo test split."""
    import datasets

    split = datasets.load_from_disk(str(CORPUS))["test"].select(range(WORKS))
    (folder / "works").mkdir()
    with open(folder / "works.csv", "w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["file", "title", "style", "room"])
        for number, row in enumerate(split):
            name = f"work-{number + 1:02d}.jpg"
            row["image"].convert("RGB").save(folder / "works" / name, quality=90)
            writer.writerow([f"works/{name}", row["painting"], row["art_style"], ROOMS[number * len(ROOMS) // WORKS]])
    route = [f"works/work-{number + 1:02d}.jpg" for number in range(0, WORKS, 3)]
    (folder / "route.txt").write_text("\n".join(route) + "\n", encoding="utf-8")


def command(*argv):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-m", *argv], cwd=ROOT, env=env, check=True)


def small_png(path):
    """Re-save a screenshot with 256 colours (the page's flat colours lose nothing visible)."""
    from PIL import Image

    with Image.open(path) as image:
        image.convert("RGB").quantize(colors=256, dither=Image.Dither.NONE).save(path, optimize=True)
    size = path.stat().st_size
    print(f"{path.relative_to(ROOT)}: {size // 1024} KB")
    if size > 200_000:
        raise SystemExit(f"{path} is larger than 200 KB; take a smaller clip.")


def shoot(page, name, selector=None):
    path = IMAGES / name
    if selector is None:
        page.screenshot(path=str(path))
    else:
        page.locator(selector).screenshot(path=str(path))
    small_png(path)


def app_screenshots(folder, executable):
    from playwright.sync_api import sync_playwright

    env = {**os.environ, "OMP_NUM_THREADS": "1", "GRADIO_TEMP_DIR": str(folder / "gradio"), "HF_HUB_OFFLINE": "1"}
    argv = [sys.executable, str(ROOT / "app.py"), "--model", str(MODEL), "--index", str(folder / "index"), "--port", str(PORT), "--device", "cpu"]
    process = subprocess.Popen(argv, cwd=folder, env=env)
    url = f"http://127.0.0.1:{PORT}"
    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(url, timeout=2).close()
                break
            except OSError:
                time.sleep(0.5)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(url)
            page.get_by_role("tab", name="Search the collection").click()
            page.locator("#search-query textarea, #search-query input").first.fill("contentment=0.5, awe=0.5")
            page.locator("#search-where textarea, #search-where input").first.fill("room=Room 2")
            page.locator("#search").click()
            page.wait_for_selector("#search-hits [data-id]")
            first, second = page.locator("#search-hits [data-id]").evaluate_all("cards => cards.slice(0, 2).map(card => card.dataset.id)")
            page.locator("#search-hits [data-id]").first.scroll_into_view_if_needed()
            page.evaluate("window.scrollTo(0, 0)")
            shoot(page, "curators-search.png")
            for item in (first, second):
                page.locator(f'#search-hits [data-id="{item}"] [data-action="like"]').click()
            page.get_by_role("tab", name="For you").click()
            page.wait_for_function("() => document.querySelectorAll('#liked [data-id]').length === 2")
            page.wait_for_selector("#recommended .sevlm-because")
            page.locator("#recommended").scroll_into_view_if_needed()
            shoot(page, "curators-for-you.png")
            page.locator("#recommended [data-action=open]").first.click()
            page.wait_for_selector("#work [data-id]")
            page.evaluate("window.scrollTo(0, 0)")
            shoot(page, "curators-work.png")
            browser.close()
    finally:
        process.terminate()
        process.wait(timeout=30)


def report_screenshot(folder, executable):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport=VIEWPORT)
        page.goto((folder / "portrait" / "index.html").as_uri())
        shoot(page, "curators-report.png")
        page.locator("#route").scroll_into_view_if_needed()
        shoot(page, "curators-route.png", "#route")
        browser.close()


def main():
    import shutil

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        raise SystemExit("Chromium is needed (apt-get install chromium).")
    with tempfile.TemporaryDirectory(prefix="sevlm-curators-") as temporary:
        folder = Path(temporary)
        make_collection(folder)
        command("sevlm.cli.index", str(folder / "works"), "--model_name_or_path", str(MODEL), "--output_dir", str(folder / "index"),
                "--metadata", str(folder / "works.csv"), "--torch_num_threads", "1", "--device", "cpu")  # fmt: skip
        command("sevlm.cli.report", "--index", str(folder / "index"), "--output_dir", str(folder / "portrait"), "--group_by", "room",
                "--route", str(folder / "route.txt"), "--title", "The emotional portrait of a small exhibition")  # fmt: skip
        report_screenshot(folder, executable)
        app_screenshots(folder, executable)


if __name__ == "__main__":
    main()
