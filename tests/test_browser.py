"""Browser tests: Debian's Chromium driven by Playwright (never a downloaded browser).

They skip when Chromium or Playwright is missing, except under CI (``REQUIRE_BROWSER=1``, set by ``.ci/run``),
where they fail instead. ``SCREENSHOT_DIR=docs`` saves the screenshots used in the README.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from conftest import SHARED_DATA

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]


def _require_browser():
    missing = None
    if not Path(CHROMIUM).exists():
        missing = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            missing = "playwright is not installed (pip install -r requirements-dev.txt)"
    if missing:
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(missing)
        pytest.skip(missing)


@pytest.fixture
def page(tmp_path):
    _require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, env={**os.environ, "HOME": str(tmp_path)})
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            yield page
        finally:
            browser.close()


@pytest.fixture
def serve(monkeypatch, request):
    """``serve(*needed)`` starts the app on the shipped checkpoints when every ``(task, variant)`` in ``needed`` has
    weights, else on the tiny untrained ones; returns ``(url, shipped)``. Servers close at teardown."""
    demos = []

    def start(*needed):
        from demo.common import get_predictor
        from models.hub import checkpoint_dir, clear_cache

        shipped = all((checkpoint_dir(t, v) / "model.safetensors").exists() for t, v in needed)
        if not shipped:
            request.getfixturevalue("tiny_checkpoints")
        monkeypatch.setenv("MODEL_SOURCE", "local")
        clear_cache()
        get_predictor.cache_clear()
        import app

        demo = app.build_demo()
        app.launch(demo, prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
        demos.append(demo)
        return demo.local_url, shipped

    yield start
    for demo in demos:
        demo.close()


@pytest.fixture
def app_url(serve):
    """The app on the shipped EFSNet checkpoint when present, else on an untrained tiny one."""
    return serve(("breast_us_seg", "efsnet"))[0]


def _shot(page, name: str):
    folder = os.environ.get("SCREENSHOT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / name), full_page=False)


def _real_busi_image() -> Path:
    real = SHARED_DATA / "busi" / "malignant" / "images" / "malignant (130).png"
    if real.exists():
        return real
    return ROOT / "demo" / "examples" / "breast_us_seg" / "malignant_130.png"  # the same BUSI image, shipped


def test_upload_real_busi_image_shows_overlay(page, app_url, tmp_path):
    page.goto(app_url)
    page.get_by_role("tab", name="Breast ultrasound (EFSNet)").wait_for()
    image = _real_busi_image()
    upload = tmp_path / "upload.png"  # a plain file name, as a user would pick
    shutil.copyfile(image, upload)
    page.locator("#breast-input input[type=file]").set_input_files(str(upload))
    page.locator("#breast-stats").get_by_text("Inference on CPU").wait_for(timeout=60_000)
    overlay = page.locator("#breast-output img")
    overlay.wait_for(timeout=30_000)
    assert overlay.evaluate("img => img.naturalWidth") == 555  # original size of malignant (130)
    assert "malignant" in page.locator("#breast-legend").inner_text()
    _shot(page, "app_breast.png")

    # opacity re-renders the overlay without running the model again
    before = overlay.get_attribute("src")
    page.locator("#breast-output").scroll_into_view_if_needed()
    slider = page.get_by_label("Mask opacity", exact=False).first
    slider.fill("0.9")
    slider.dispatch_event("change")
    page.wait_for_function(
        "src => document.querySelector('#breast-output img').src !== src", arg=before, timeout=30_000
    )


def test_example_with_ground_truth_shows_comparison(page, app_url):
    from playwright.sync_api import expect

    page.goto(app_url)
    page.get_by_role("tab", name="Breast ultrasound (EFSNet)").wait_for()
    expect(page.locator("#breast-compare")).to_be_hidden()  # no mask yet: no empty comparison box
    page.get_by_role("button", name="malignant 130", exact=True).click()  # malignant (130) with its mask
    page.locator("#breast-input img").wait_for(timeout=30_000)
    page.locator("#breast-gt img").wait_for(timeout=30_000)
    page.locator("#breast-run").click()
    page.locator("#breast-gt-stats").get_by_text("Dice").wait_for(timeout=60_000)
    page.locator("#breast-compare img").wait_for(timeout=30_000)
    page.set_viewport_size({"width": 1280, "height": 720})  # the Dice, a key number, in view on a projector
    page.evaluate("window.scrollTo(0, 0)")
    box = page.locator("#breast-stats").get_by_text("Dice").first.bounding_box()
    assert box and box["y"] + box["height"] <= 720, box
    expect(page.locator("#breast-stats")).to_contain_text("reference label malignant")  # the example's class


def test_breast_and_lung_tabs_flag_an_image_of_another_kind(page, serve, tmp_path):
    """A chest X-ray in the breast tab and a dermoscopy photograph in the lung tab: the result still shows, under a
    warning that the image is not like the training images (each model's out-of-distribution gate)."""
    from playwright.sync_api import expect

    url, shipped = serve(("breast_us_seg", "efsnet"), ("lung_seg", "unet"), ("lung_seg", "unetplusplus"))
    if not shipped:
        pytest.skip("the gates ship with the trained checkpoints")
    page.set_viewport_size({"width": 1280, "height": 720})
    page.goto(url)
    page.get_by_role("tab", name="Breast ultrasound (EFSNet)").click()
    xray = tmp_path / "chest xray.png"
    shutil.copyfile(EXAMPLES / "lung_seg" / "CHNCXR_0012_0.png", xray)
    page.locator("#breast-input input[type=file]").set_input_files(str(xray))
    stats = page.locator("#breast-stats")
    expect(stats).to_contain_text("Not like the BUSI training images", timeout=120_000)
    expect(stats).to_contain_text("chest xray.png")
    box = stats.get_by_text("Not like the BUSI", exact=False).first.bounding_box()
    assert box is not None and box["y"] + box["height"] <= 720, box  # the warning in the first screen
    page.get_by_role("tab", name="Lung X-ray (U-Net vs U-Net++)").click()
    skin = sorted((EXAMPLES / "skin_lesion").glob("*.jpg"))[0]  # U-Net++ (model B) flags it
    page.locator("#lung-input input[type=file]").set_input_files(str(skin))
    expect(page.locator("#lung-stats")).to_contain_text("Not like the chest X-rays", timeout=120_000)


def test_leaderboard_tab_lists_the_thesis_row(page, app_url):
    page.goto(app_url)
    page.get_by_role("tab", name="Leaderboard").click()
    from playwright.sync_api import expect

    expect(page.locator("#lb-status")).to_contain_text("rows.", timeout=30_000)
    search = page.locator("#lb-search textarea, #lb-search input").first
    search.fill("efsnet thesis")  # the table is virtualised: search brings the row into view
    search.press("Enter")
    expect(page.locator("#leaderboard-table")).to_contain_text("EFSNet (thesis)", timeout=30_000)


@pytest.fixture
def lung_app_url(serve):
    """The app on the shipped lung checkpoints when present, else on the tiny untrained ones."""
    url, shipped = serve(("lung_seg", "unet"), ("lung_seg", "unetplusplus"))
    return url, ("unetplusplus" if shipped else "unet-sgd")


def test_lung_comparison_side_by_side(page, lung_app_url):
    from playwright.sync_api import expect

    url, model_b = lung_app_url
    page.goto(url)
    page.get_by_role("tab", name="Lung X-ray (U-Net vs U-Net++)").click()
    expect(page.locator("#lung-compare-a")).to_be_hidden()  # no mask yet: no empty comparison boxes
    tab = page.locator("#lung-input").locator("xpath=ancestor::div[contains(@class,'column')][1]")
    tab.get_by_role("button", name="Montgomery 15, normal", exact=True).first.click()  # MCUCXR_0015_0 with its mask
    page.locator("#lung-input img").wait_for(timeout=30_000)
    page.locator("#lung-gt img").wait_for(timeout=30_000)
    if model_b != "unetplusplus":
        page.locator("#lung-model-b input").fill("U-Net, SGD")
        page.keyboard.press("Enter")
    page.locator("#lung-run").click()
    expect(page.locator("#lung-gt-stats")).to_contain_text("B (", timeout=90_000)
    expect(page.locator("#lung-stats")).to_contain_text("disagree")
    slider_imgs = page.locator("#lung-slider img")
    expect(slider_imgs).to_have_count(2, timeout=30_000)
    page.locator("#lung-disagree img").wait_for(timeout=30_000)
    page.locator("#lung-compare-b img").wait_for(timeout=30_000)
    page.locator("#lung-slider").scroll_into_view_if_needed()
    _shot(page, "app_lung.png")

    page.get_by_role("tab", name="Training curves and analysis").click()
    expect(page.locator("#lung-dice-plot .js-plotly-plot")).to_have_count(1, timeout=30_000)
    expect(page.locator("#lung-dice-plot")).to_contain_text("report", timeout=30_000)
    expect(page.locator("#lung-results")).to_contain_text("U-Net++, Adam")
    page.get_by_label("U-Net vs U-Net++ (Adam)").check()
    expected = "U-Net++, Adam" if model_b == "unetplusplus" else "U-Net, Adam"  # the colour key in the title
    expect(page.locator("#lung-dice-plot")).to_contain_text(expected, timeout=30_000)
    if model_b == "unetplusplus":  # the Adam pair only: no SGD run, no SGD report line
        expect(page.locator("#lung-dice-plot")).not_to_contain_text("SGD", timeout=30_000)
    _shot(page, "app_lung_curves.png")


def test_ablation_tab_shows_curves_and_predicts(page, serve):
    from playwright.sync_api import expect

    url, _ = serve(("breastmnist_standin", "bn"))
    page.goto(url)
    page.get_by_role("tab", name="OrganSMNIST ablation").click()
    expect(page.locator("#organ-curves .js-plotly-plot")).to_have_count(1, timeout=30_000)
    expect(page.locator("#organ-curves")).to_contain_text("+ BatchNorm: val", timeout=30_000)
    expect(page.locator("#organ-bars")).to_contain_text("student report")
    expect(page.locator("#organ-table")).to_contain_text("measured here")
    _shot(page, "app_ablation.png")
    page.locator("#organ-dataset").get_by_text("OrganSMNIST").click()  # no run here: the command, no empty plots
    expect(page.locator("#organ-status")).to_contain_text("No OrganSMNIST run present", timeout=30_000)
    expect(page.locator("#organ-curves")).to_be_hidden()
    expect(page.locator("#organ-confusion")).to_be_hidden()
    expect(page.get_by_label("Confusion matrix of")).to_be_hidden()
    expect(page.locator("#organ-bars")).to_contain_text("student report")
    page.locator("#organ-dataset").get_by_text("BreastMNIST-style").click()
    expect(page.locator("#organ-curves")).to_contain_text("+ BatchNorm: val", timeout=30_000)
    page.get_by_role("tab", name="Predict").click()
    page.get_by_role("button", name="malignant 10", exact=True).click()  # malignant_10
    page.locator("#organ-input img").wait_for(timeout=30_000)
    page.locator("#organ-run").click()
    expect(page.locator("#organ-info")).to_contain_text("28x28", timeout=60_000)
    page.locator("#organ-preview img").wait_for(timeout=30_000)
    expect(page.locator("#organ-label")).to_contain_text("malignant")


def test_skin_tab_shows_a_grad_cam(page, serve):
    from playwright.sync_api import expect

    url, _ = serve(("skin_lesion", "customnet"))
    page.goto(url)
    page.get_by_role("tab", name="Skin lesion (ISIC 2017)").click()
    page.get_by_role("button", name="melanoma 12099", exact=True).first.click()  # a melanoma example
    page.locator("#skin-input img").wait_for(timeout=30_000)
    page.locator("#skin-run").click()
    expect(page.locator("#skin-info")).to_contain_text("Grad-CAM for", timeout=90_000)
    cam = page.locator("#skin-cam img")
    cam.wait_for(timeout=30_000)
    assert cam.evaluate("img => img.naturalWidth") == 256  # over the original 256x256 image
    expect(page.locator("#skin-label")).to_contain_text("melanoma")
    expect(page.locator("#skin-ood")).to_contain_text("distance")
    _shot(page, "app_skin.png")


def test_multitask_tab_flags_a_chest_x_ray(page, serve):
    """A newcomer's chest X-ray in the ultrasound tab: it was "Head circumference: 535 px" with the organ check "96 %"
    sure of a fetal head; now the gate's warning is the headline, in the first screen, and the organ check's guess
    is said to mean nothing."""
    from playwright.sync_api import expect

    url, _ = serve(("ultrasound_multitask", "busi-hc18-lite1"))
    page.set_viewport_size({"width": 1280, "height": 720})
    page.goto(url)
    page.get_by_role("tab", name="Multitask ultrasound (FMC-UIA)").click()
    page.locator("#mt-input input[type=file]").set_input_files(str(EXAMPLES / "lung_seg" / "CHNCXR_0012_0.png"))
    info = page.locator("#mt-info")
    expect(info).to_contain_text("Not like the training ultrasound images", timeout=120_000)
    expect(info).to_contain_text("means nothing")
    expect(info).to_contain_text("CHNCXR_0012_0.png")
    warning = info.get_by_text("Not like the training ultrasound images").bounding_box()
    assert warning is not None and 0 <= warning["y"] and warning["y"] + warning["height"] <= 720, warning
    example = page.get_by_role("button", name="breast, benign", exact=True).first
    example.click()  # an ultrasound after it is not flagged
    expect(info).to_contain_text("benign_17", timeout=120_000)
    expect(info).not_to_contain_text("Not like the training")


def test_multitask_tab_shows_all_four_output_kinds(page, serve):
    from playwright.sync_api import expect

    url, _ = serve(("ultrasound_multitask", "busi-hc18-lite1"))
    page.goto(url)
    page.get_by_role("tab", name="Multitask ultrasound (FMC-UIA)").click()

    # breast: segmentation + classification + detection
    def example(name: str):  # the labelled example buttons (image, organ, pixel size)
        page.get_by_role("button", name=name, exact=True).first.click()

    example("breast, benign")
    page.locator("#mt-input img").wait_for(timeout=30_000)
    # an example leaves the organ at Auto (a breast example set "Breast", and a fetal upload next got a warning)
    expect(page.locator("#mt-organ input:checked")).to_have_value("auto")
    page.locator("#mt-run").click()
    info = page.locator("#mt-info")
    expect(info).to_contain_text("(segmentation)", timeout=90_000)
    expect(info).to_contain_text("(classification)")
    expect(info).to_contain_text("(detection)")
    expect(page.locator("#mt-label")).to_contain_text("malignant")
    picture = page.locator("#mt-picture img")
    picture.wait_for(timeout=30_000)
    assert picture.evaluate("img => img.naturalWidth") > 64  # drawn at the original size
    # fetal head: keypoints and the head circumference in mm (the example carries its pixel size)
    example("head 60 mm")
    expect(page.locator("#mt-heads")).to_contain_text("Head axes", timeout=30_000)
    page.locator("#mt-run").click()
    expect(info).to_contain_text("(keypoints)", timeout=90_000)
    expect(info).to_contain_text("mm")
    page.locator("#mt-organ").scroll_into_view_if_needed()
    # the example ran by itself, then Run again: the README's picture waits for that second run to finish
    expect(page.locator(".progress-text:visible")).to_have_count(0, timeout=60_000)
    picture.wait_for(timeout=30_000)
    _shot(page, "app_multitask.png")


def test_dashboard_filters_searches_and_sorts(page, app_url):
    from playwright.sync_api import expect

    page.goto(app_url)
    page.get_by_role("tab", name="Leaderboard").click()
    table = page.locator("#leaderboard-table")
    expect(table).to_contain_text("measured here", timeout=30_000)
    page.locator("#lb-source input").click()
    page.get_by_role("option", name="publication", exact=True).click()
    page.locator("#lb-search textarea, #lb-search input").first.fill("idiap shenzhen")
    page.locator("#lb-search textarea, #lb-search input").first.press("Enter")
    expect(page.locator("#lb-status")).to_contain_text("rows.")
    expect(table).not_to_contain_text("measured here", timeout=30_000)
    rows = table.locator("div[role=row].virtual-row")  # the grid is virtualised: rows are divs
    expect(rows.first).to_contain_text("Idiap")
    n = rows.count()
    assert n >= 3
    # sort by Dice, descending, through the column's menu: numbers sort as numbers
    header = table.locator("th[title='dice']").first
    header.hover()
    header.locator("button.cell-menu-button").click()
    page.get_by_text("Sort descending", exact=False).first.click()
    col = header.get_attribute("aria-colindex")
    page.wait_for_timeout(500)
    cells = table.locator(f"div[role=row].virtual-row [role=gridcell][aria-colindex='{col}']")
    values = [float(t) for t in cells.all_inner_texts()[:n] if t.strip()]
    assert values == sorted(values, reverse=True) and len(values) >= 3
    _shot(page, "app_leaderboard.png")


def test_dashboard_tradeoffs_and_studies_draw_their_plots(page, app_url):
    """Trade-offs: the metric-vs-params and vs-latency scatters with a Pareto front; Studies: four Plotly charts."""
    from playwright.sync_api import expect

    page.goto(app_url)
    page.get_by_role("tab", name="Leaderboard").click()
    page.get_by_role("tab", name="Trade-offs").click()
    for plot in ("#lb-params", "#lb-latency"):
        expect(page.locator(f"{plot} .js-plotly-plot")).to_be_visible(timeout=30_000)
    expect(page.locator("#lb-params")).to_contain_text("Pareto front")
    expect(page.locator("#lb-params .scatterlayer .point").first).to_be_attached()
    page.get_by_role("tab", name="Studies").click()
    for plot in ("#lb-ablation", "#lb-multitask", "#lb-adam-sgd", "#lb-arch"):
        expect(page.locator(f"{plot} .js-plotly-plot")).to_be_visible(timeout=30_000)


def test_lazy_example_cache_answers_an_example_click(page, serve, monkeypatch, tmp_path):
    """On a Space (or with CACHE_EXAMPLES=lazy) an example click shows its result without pressing Run; the first
    click computes it and fills Gradio's example cache, nothing is computed at start-up."""
    from playwright.sync_api import expect

    cache = tmp_path / "examples_cache"
    monkeypatch.setenv("CACHE_EXAMPLES", "lazy")
    monkeypatch.setenv("GRADIO_EXAMPLES_CACHE", str(cache))
    url, _ = serve(("ultrasound_multitask", "busi-hc18-lite1"))
    assert not any(cache.rglob("*.csv"))  # lazy: nothing cached at start-up
    page.goto(url)
    page.get_by_role("tab", name="Multitask ultrasound").click()
    page.get_by_role("button", name="head 60 mm", exact=True).first.click()
    expect(page.locator("#mt-info")).to_contain_text("Head circumference", timeout=90_000)  # no Run pressed
    page.locator("#mt-picture img").wait_for(timeout=30_000)
    assert any(cache.rglob("*")), "the example's result was not cached"


def test_dicom_import_panel_loads_a_windowed_image_and_segments_it(page, app_url, tmp_path):
    """The DICOM / NIfTI panel under the image box: a 12-bit DICOM with its own window becomes the tab's 8-bit image,
    and the tab segments it."""
    import numpy as np
    from PIL import Image
    from playwright.sync_api import expect

    from tests.test_image_io import make_dicom

    arr = np.asarray(Image.open(_real_busi_image()).convert("L"), np.uint16) * 16
    dcm = make_dicom(tmp_path / "US0001.dcm", arr, window=(2048, 4096))
    page.goto(app_url)
    page.locator("#breast-medical").get_by_text("DICOM, NIfTI or 16-bit TIFF").click()
    page.locator("#breast-medical-file input[type=file]").set_input_files(str(dcm))
    expect(page.locator("#breast-medical-note")).to_contain_text("window centre 2048", timeout=30_000)
    page.locator("#breast-input img").wait_for(timeout=30_000)
    page.locator("#breast-run").click()
    expect(page.locator("#breast-stats")).to_contain_text("Inference on CPU", timeout=60_000)
    w, h = Image.open(_real_busi_image()).size
    expect(page.locator("#breast-stats")).to_contain_text(f"image {w}x{h}")  # the DICOM's own pixels


# --- first use (issue 14): a newcomer at 1280x720 ---------------------------------------------------------------
EXAMPLES = ROOT / "demo" / "examples"
FIRST_USE = {  # tab, sub-tab, held-out image, result box, text of a result, first example, its file, models
    "breast": ("Breast ultrasound (EFSNet)", None, EXAMPLES / "breast_us_seg" / "malignant_96.png", "#breast-stats",
               "Inference on CPU", "benign 372", "benign_372", [("breast_us_seg", "efsnet")]),
    "lung": ("Lung X-ray (U-Net vs U-Net++)", None, EXAMPLES / "lung_seg" / "MCUCXR_0104_1.png", "#lung-stats",
             "disagree", "Shenzhen 12, normal", "CHNCXR_0012_0", [("lung_seg", "unet"), ("lung_seg", "unetplusplus")]),
    "organ": ("OrganSMNIST ablation", "Predict", EXAMPLES / "organsmnist" / "normal_12.png", "#organ-info", "28x28",
              "benign 4", "benign_4", [("breastmnist_standin", "bn")]),
    "skin": ("Skin lesion (ISIC 2017)", None, EXAMPLES / "skin_lesion" / "nevus_ISIC_0001852.jpg", "#skin-info",
             "Grad-CAM for", "melanoma 12099", "melanoma_ISIC_0012099", [("skin_lesion", "customnet")]),
    "mt": ("Multitask ultrasound (FMC-UIA)", None, EXAMPLES / "ultrasound_multitask" / "malignant_14.png", "#mt-info",
           "(segmentation)", "breast, benign", "benign_17", [("ultrasound_multitask", "busi-hc18-lite1")]),
}  # fmt: skip
RESULT_IMAGE = {"breast": "#breast-output", "lung": "#lung-slider", "organ": "#organ-preview", "skin": "#skin-cam",
                "mt": "#mt-picture"}  # fmt: skip


@pytest.mark.parametrize("prefix", list(FIRST_USE))
def test_first_use_at_1280x720(page, serve, tmp_path, prefix):
    """Fresh page, every input at its default: upload a real image (it runs), press the main button (a result naming
    the image, no error, visible without scrolling), the first example (its own result), a bad file (a message in
    the tab, the old result gone), then a good file again (the message gone)."""
    from playwright.sync_api import expect

    tab, subtab, image, result_id, text, example, example_file, needed = FIRST_USE[prefix]
    url, _ = serve(*needed)
    page.set_viewport_size({"width": 1280, "height": 720})
    page.goto(url)
    page.get_by_role("tab", name=tab).click()
    if subtab:
        page.get_by_role("tab", name=subtab).click()
    result, message = page.locator(result_id), page.locator(f"#{prefix}-message")
    upload = page.locator(f"#{prefix}-input input[type=file]")
    good = tmp_path / f"my upload {image.name}"  # a user's file name, spaces and all
    shutil.copyfile(image, good)

    upload.set_input_files(str(good))  # an upload runs the model
    expect(result).to_contain_text(text, timeout=120_000)
    expect(result).to_contain_text(good.name)  # the result names its image
    page.locator(f"#{prefix}-run").click()
    expect(result).to_contain_text(good.name, timeout=120_000)
    expect(message).not_to_contain_text("⚠️")
    page.wait_for_timeout(500)
    box = result.bounding_box()
    assert box is not None and 0 <= box["y"] and box["y"] + min(box["height"], 60) <= 720, box  # no scrolling
    picture = page.locator(RESULT_IMAGE[prefix]).bounding_box()  # the result's picture, whole, in the first screen
    assert picture is not None and picture["y"] + picture["height"] <= 720, picture
    _shot(page, f"first_use_{prefix}.png")

    button = page.get_by_role("button", name=example, exact=True).first
    shown = button.bounding_box()  # the examples are in the first screen too: a newcomer sees them without scrolling
    assert shown is not None and shown["y"] + shown["height"] <= 720, shown
    button.click()  # an example runs too
    expect(result).to_contain_text(example_file, timeout=120_000)
    expect(result).not_to_contain_text(good.name)

    bad = tmp_path / "broken.png"
    bad.write_text("this is not an image")
    upload.set_input_files(str(bad))
    expect(message).to_contain_text("not an image", timeout=60_000)  # stays in the tab
    expect(result).not_to_contain_text(text)  # the previous image's result is gone
    expect(page.locator(f"#{prefix}-input img")).to_have_count(0, timeout=30_000)  # it leaves the box: no broken icon
    page.locator(f"#{prefix}-run").click()  # Run now: the refused file's reason stays (it said "Upload an image first")
    page.wait_for_timeout(1_500)
    expect(message).to_contain_text("not an image")

    upload.set_input_files(str(good))
    expect(result).to_contain_text(good.name, timeout=120_000)
    expect(message).not_to_contain_text("⚠️")


def test_leaderboard_first_screen_shows_score_params_latency_and_tolerant_search(page, app_url):
    """Issue 14.4/14.5: at 1280x720 the task, model, primary score, parameters, latency, source and split are whole in
    the first screen; "unet" (the placeholder's example) finds the U-Net rows."""
    from playwright.sync_api import expect

    page.set_viewport_size({"width": 1280, "height": 720})
    page.goto(app_url)
    page.get_by_role("tab", name="Leaderboard").click()
    table = page.locator("#leaderboard-table")
    expect(table).to_contain_text("measured here", timeout=30_000)
    for column in ("task", "model", "metric", "score", "params", "latency_ms", "source", "split"):
        header = table.locator(f"th[title='{column}']").first
        box = header.bounding_box()  # whole, not half: "split" (the row's evidence) sat cut at the right edge
        assert box is not None and box["x"] + box["width"] <= 1280, (column, box)
    search = page.locator("#lb-search textarea, #lb-search input").first
    search.fill("unet")
    search.press("Enter")
    expect(table).to_contain_text("U-Net", timeout=30_000)
    _shot(page, "first_use_leaderboard.png")
    # long names are shown whole (wrapped in their column), not cut to "EfficientNet-Lite1…ne) (ours, 5-fold CV)"
    search.fill("5-fold")
    search.press("Enter")
    expect(table).to_contain_text("EfficientNet-Lite1 (ImageNet fine-tune) (ours, 5-fold CV)", timeout=30_000)
    expect(table).not_to_contain_text("…ne)")


def test_projector_view_enlarges_type_across_the_app(page, app_url):
    """Issue 19.5: the header's toggle makes the type larger in every tab (and back), with no server round trip."""
    from playwright.sync_api import expect

    page.set_viewport_size({"width": 1280, "height": 720})
    page.goto(app_url)
    title = page.locator("#app-title p").first
    expect(title).to_be_visible(timeout=30_000)

    def size() -> float:
        return float(title.evaluate("e => parseFloat(getComputedStyle(e).fontSize)"))

    before = size()
    page.locator("#projector-toggle input").check()
    page.wait_for_function("document.querySelector('.gradio-container').classList.contains('projector')")
    assert size() >= 1.1 * before
    page.get_by_role("tab", name="Skin lesion (ISIC 2017)").click()  # a switch re-measures the tab row
    page.wait_for_timeout(1_000)
    # every tab stays in the row: the larger type once sent Leaderboard and About into Gradio's "..." menu
    expect(page.locator(".overflow-menu:not(.hide)")).to_have_count(0)
    page.get_by_role("tab", name="Leaderboard").click()
    table = page.locator("#leaderboard-table")
    expect(table).to_contain_text("measured here", timeout=30_000)
    header = table.locator("th[title='model']").first
    assert float(header.evaluate("e => parseFloat(getComputedStyle(e).fontSize)")) >= 19
    cell = table.locator(".virtual-body .cell-wrap").first  # the rows are a virtual list of divs: they kept 14 px
    assert float(cell.evaluate("e => parseFloat(getComputedStyle(e).fontSize)")) >= 17
    # scrolled sideways, the task and model columns stay (Gradio's pinned_columns set no sticky style on the rows)
    shift = table.evaluate("""t => { const v = t.querySelector('.virtual-table-viewport'), c = t.querySelector(
        '.virtual-row .first-column'), x = c.getBoundingClientRect().left; v.scrollLeft = 900;
        return [v.scrollLeft, c.getBoundingClientRect().left - x]; }""")
    assert shift[0] > 0 and abs(shift[1]) < 2, shift
    _shot(page, "projector_view.png")
    page.locator("#projector-toggle input").uncheck()
    page.wait_for_function("!document.querySelector('.gradio-container').classList.contains('projector')")
    assert size() == before


@pytest.mark.parametrize("prefix", ["breast", "lung", "skin", "mt"])
def test_slide_export_gives_a_1920x1080_png_of_the_result(page, serve, tmp_path, prefix):
    """Issue 19.4: after a result, one click gives a 1920x1080 PNG (model, parameters, metric, data, source); before
    any result, a message in the tab instead."""
    import io

    from PIL import Image
    from playwright.sync_api import expect

    tab, subtab, image, result_id, text, *_, needed = FIRST_USE[prefix]
    url, _ = serve(*needed)
    page.set_viewport_size({"width": 1280, "height": 720})
    page.goto(url)
    page.get_by_role("tab", name=tab).click()
    page.locator(f"#{prefix}-slide").click()  # nothing to export yet
    expect(page.locator(f"#{prefix}-message")).to_contain_text("no result yet", timeout=30_000)
    page.locator(f"#{prefix}-input input[type=file]").set_input_files(str(image))
    expect(page.locator(result_id)).to_contain_text(text, timeout=120_000)
    page.locator(f"#{prefix}-slide").click()
    link = page.locator(f"#{prefix}-slide-file a").first
    expect(link).to_be_visible(timeout=60_000)
    png = page.request.get(link.get_attribute("href")).body()
    slide = Image.open(io.BytesIO(png))
    assert slide.size == (1920, 1080) and slide.format == "PNG"
    _shot(page, f"slide_{prefix}.png")


def test_a_permalink_restores_the_view_and_bad_values_fall_back(page, serve):
    """Issue 19.3: a link opened in a fresh page selects its tab, loads and runs its example with its models; unknown
    or out-of-range values fall back to their defaults with a notice, never an error; "Copy link" gives the link."""
    from playwright.sync_api import expect

    url, _ = serve(
        ("lung_seg", "unet"), ("lung_seg", "unetplusplus"), ("breast_us_seg", "efsnet"), ("breastmnist_standin", "bn")
    )
    page.set_viewport_size({"width": 1280, "height": 720})
    page.goto(url + "?tab=lung_seg&example=2&models=unetplusplus,unet")
    stats = page.locator("#lung-stats")
    expect(stats).to_contain_text("disagree", timeout=120_000)
    expect(stats).to_contain_text("CHNCXR")  # the second example is a Shenzhen X-ray
    expect(page.locator("#lung-model-a input")).to_have_value("U-Net++, Adam")
    expect(page.locator("#permalink-notice")).not_to_contain_text("could not")
    _shot(page, "permalink_lung.png")

    page.goto(url + "?tab=breast_us_seg&example=99&opacity=7")
    notice = page.locator("#permalink-notice")
    expect(notice).to_contain_text("example 99 does not exist", timeout=30_000)
    expect(notice).to_contain_text("opacity 7 is not between 0 and 1")
    expect(page.locator("#breast-run")).to_be_visible()  # the tab the link named, at its defaults
    page.locator("#breast_us_seg-copy-link").click()
    link = page.locator("#breast_us_seg-link textarea, #breast_us_seg-link input").first
    expect(link).to_have_value(url.rstrip("/") + "/?tab=breast_us_seg&opacity=0.4", timeout=10_000)

    page.goto(url + "?tab=nowhere")
    expect(page.locator("#permalink-notice")).to_contain_text("there is no tab nowhere", timeout=30_000)

    page.goto(url + "?tab=organsmnist&example=1")  # an example in a sub-tab: the link opens that sub-tab
    expect(page.locator("#organ-info")).to_contain_text("28x28", timeout=120_000)
    expect(page.locator("#organ-info")).to_be_visible()


def test_robustness_lab_reruns_live_and_sweeps(page, serve):
    """Issue 19.2 in Chromium: an example runs at the default perturbation, a new severity re-runs on its own, and
    the sweep draws Dice against severity for both models."""
    from playwright.sync_api import expect

    url, _ = serve(("lung_seg", "unet"), ("lung_seg", "unetplusplus"))
    page.set_viewport_size({"width": 1280, "height": 720})
    page.goto(url)
    page.get_by_role("tab", name="Lung X-ray (U-Net vs U-Net++)").click()
    page.get_by_role("tab", name="Robustness lab").click()
    page.locator("#lab-input").wait_for(timeout=30_000)
    page.get_by_role("button", name="Shenzhen 328, TB", exact=True).last.click()
    stats = page.locator("#lab-stats")
    expect(stats).to_contain_text("speckle-0.50", timeout=120_000)
    number = page.locator("#lab-severity input[type=number]")
    number.fill("0.8")
    number.press("Enter")
    expect(stats).to_contain_text("speckle-0.80", timeout=120_000)  # the change re-ran by itself
    page.locator("#lab-n input[type=number]").fill("6")
    page.locator("#lab-n input[type=number]").press("Enter")
    page.locator("#lab-sweep").click()
    expect(page.locator("#lab-sweep-text")).to_contain_text("Dice falls by", timeout=180_000)
    expect(page.locator("#lab-sweep-plot")).to_contain_text("Speckle noise")
    _shot(page, "robustness_lab.png")


def test_quiz_scores_a_drawn_mask_and_a_picked_class(page, serve):
    """Issue 19.1 in Chromium: a held-out image, an outline clicked around its middle, Reveal: three maps, three
    scores in the session's table and its CSV; a second round at once; the skin quiz scores a picked class."""
    from playwright.sync_api import expect

    url, _ = serve(("breast_us_seg", "efsnet"), ("skin_lesion", "efficientnet-lite1"))
    page.set_viewport_size({"width": 1280, "height": 720})
    page.goto(url)
    page.get_by_role("tab", name="Breast ultrasound (EFSNet)").click()
    page.get_by_role("tab", name="Quiz").first.click()
    page.locator("#breast-quiz-reveal").click()
    expect(page.locator("#breast-quiz-message")).to_contain_text("New image first", timeout=30_000)
    page.locator("#breast-quiz-new").click()
    expect(page.locator("#breast-quiz-verdict")).to_contain_text("Round 1", timeout=30_000)
    picture = page.locator("#breast-quiz-editor img")
    picture.wait_for(timeout=30_000)

    def outline():  # four corners clicked around the middle of the image: the outline closes itself
        box = picture.bounding_box()
        for fx, fy in ((0.35, 0.35), (0.65, 0.35), (0.65, 0.65), (0.35, 0.65)):
            page.mouse.click(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)
            page.wait_for_timeout(700)  # each click redraws the picture with the corner

    outline()
    page.locator("#breast-quiz-reveal").click()
    verdict = page.locator("#breast-quiz-verdict")
    expect(verdict).to_contain_text("Dice against the truth: you", timeout=120_000)
    expect(verdict).to_contain_text("· EFSNet ")  # the answering model by name (it once printed a component's repr)
    expect(verdict).not_to_contain_text("object at 0x")
    expect(page.locator("#breast-quiz-table")).to_contain_text("you vs model")
    expect(page.locator("#breast-quiz-csv a").first).to_be_visible(timeout=30_000)
    _shot(page, "quiz_breast.png")
    # the second round shows its image at once (the brush editor took 60-120 s here) and scores a new outline
    page.locator("#breast-quiz-new").click()
    expect(page.locator("#breast-quiz-verdict")).to_contain_text("Round 2", timeout=15_000)
    page.wait_for_timeout(1000)
    outline()
    page.locator("#breast-quiz-reveal").click()
    expect(verdict).to_contain_text("Dice against the truth: you", timeout=60_000)
    expect(page.locator("#breast-quiz-table .virtual-row")).to_have_count(2)

    page.get_by_role("tab", name="Skin lesion (ISIC 2017)").click()
    page.get_by_role("tab", name="Quiz").first.click()  # the visible one: the skin tab's
    page.locator("#skin-quiz-new").click()
    expect(page.locator("#skin-quiz-verdict")).to_contain_text("Round 1", timeout=30_000)
    page.locator("#skin-quiz-answer").get_by_text("melanoma").click()
    page.locator("#skin-quiz-reveal").click()
    expect(page.locator("#skin-quiz-verdict")).to_contain_text("Truth:", timeout=120_000)
    expect(page.locator("#skin-quiz-table")).to_contain_text("agree")  # you vs model: agree or disagree
    # a second Reveal (another answer picked) keeps the verdict and does not score the round again (it added a copy)
    page.locator("#skin-quiz-answer").get_by_text("nevus").click()
    page.locator("#skin-quiz-reveal").click()
    expect(page.locator("#skin-quiz-message")).to_contain_text("scored already", timeout=30_000)
    expect(page.locator("#skin-quiz-verdict")).to_contain_text("You: melanoma")
    expect(page.locator("#skin-quiz-table .virtual-row")).to_have_count(1)


def test_skin_robustness_lab_colour_cast_and_sweep(page, serve):
    """The dermoscopy lab in Chromium: an example under a colour cast, then the sweep's accuracy plot."""
    from playwright.sync_api import expect

    url, _ = serve(("skin_lesion", "efficientnet-lite1"), ("skin_lesion", "customnet"))
    page.set_viewport_size({"width": 1280, "height": 720})
    page.goto(url)
    page.get_by_role("tab", name="Skin lesion (ISIC 2017)").click()
    page.get_by_role("tab", name="Robustness lab").first.click()
    page.locator("#skinlab-input").wait_for(timeout=30_000)
    page.get_by_role("button", name="melanoma 12151", exact=True).last.click()
    expect(page.locator("#skinlab-stats")).to_contain_text("colour cast at severity 0.5", timeout=120_000)
    expect(page.locator("#skinlab-stats")).to_contain_text("**B,".replace("**", ""))
    page.locator("#skinlab-n input[type=number]").fill("6")
    page.locator("#skinlab-n input[type=number]").press("Enter")
    page.locator("#skinlab-sweep").click()
    expect(page.locator("#skinlab-sweep-text")).to_contain_text("accuracy", timeout=180_000)
    expect(page.locator("#skinlab-sweep-plot")).to_contain_text("Colour cast")
    _shot(page, "robustness_skin.png")


def test_cine_loop_streams_every_frame_as_it_is_ready(page, serve):
    """Issue 20: a fresh page at 1280x720, the example loop, "Segment video": every frame reaches the page one by one
    (stamped in the page as it arrives), the tab reports the measured FPS above the fold, and the WebM follows. The
    FPS itself is measured by ``python -m bench.cine_browser`` (speed targets live in benchmarks)."""
    from playwright.sync_api import expect

    from bench.cine_browser import open_cine, run_once

    url, _ = serve(("breast_us_seg", "efsnet"))
    page.set_viewport_size({"width": 1280, "height": 720})
    page.goto(url)  # first the main button with no video: the message stays in the tab
    page.get_by_role("tab", name="Cine loop (video)").click()
    page.locator("#breast-video-run").click()
    expect(page.locator("#breast-video-message")).to_contain_text("Upload a video first", timeout=30_000)
    page.locator("#breast-video-examples button.gallery-item").first.click()  # then the example: the warning goes
    page.locator("#breast-video-in video").wait_for(timeout=30_000)
    expect(page.locator("#breast-video-message")).not_to_contain_text("Upload", timeout=30_000)
    open_cine(page, url)
    assert page.locator("#breast-video-run").bounding_box()["y"] < 720  # the main button above the fold
    first = run_once(page, "128")
    assert first["frames_shown"] == 45 and first["browser_fps"] > 0
    assert "FPS end to end" in first["stats"] and "cine_loop_synthetic.webm" in first["stats"]
    stats = page.locator("#breast-video-stats").bounding_box()
    assert stats["y"] + 40 < 720  # its key number visible without scrolling
    loop = page.locator("#breast-video-out video")
    loop.wait_for(timeout=30_000)  # then the segmented loop plays where the stream was, at the source's rate
    assert loop.bounding_box()["y"] < 720
    expect(page.locator("#breast-video-live img.cine-frame")).to_have_count(0)
    second = run_once(page, "256")  # a second run is timed on its own frames, at the thesis's input size
    assert second["frames_shown"] == 45 and "at 256 px" in second["stats"]


def test_a_switched_setting_reruns_and_pictures_fit(page, serve, tmp_path):
    """Seen by a newcomer: the multitask pixel size starts empty, switching the organ re-runs on the image shown (it
    failed: the re-run sent the other organ's heads), a changed lung model re-runs, and the A | B slider shows both
    whole X-rays (it cropped a tall one and offset one layer)."""
    from playwright.sync_api import expect

    url, _ = serve(("ultrasound_multitask", "busi-hc18-lite1"), ("lung_seg", "unet"), ("lung_seg", "unetplusplus"))
    page.set_viewport_size({"width": 1280, "height": 720})
    page.goto(url)
    page.get_by_role("tab", name="Multitask ultrasound (FMC-UIA)").click()
    pixel = page.locator("#mt-pixel input")
    expect(pixel).to_have_value("", timeout=30_000)
    page.locator("#mt-input input[type=file]").set_input_files(str(EXAMPLES / "ultrasound_multitask" / "benign_17.png"))
    info, message = page.locator("#mt-info"), page.locator("#mt-message")
    expect(info).to_contain_text("Lesion class", timeout=120_000)
    page.locator("#mt-organ").get_by_text("Fetal head (HC18)").click()
    expect(info).to_contain_text("Head circumference", timeout=120_000)  # re-ran with the fetal heads
    expect(info).to_contain_text("looks like a Breast")
    expect(info).to_contain_text("Choose Breast (BUSI) under Organ")  # what to do, as the headline
    assert "Head circumference" not in " ".join(info.locator("h3").all_inner_texts())  # the wrong organ's answer: small
    expect(message).not_to_contain_text("⚠️")
    # a file type the upload refuses: Gradio's notice sits at the bottom right, clear of the task tabs (it covered them)
    refused = tmp_path / "notes.txt"
    refused.write_text("not an image")
    page.locator("#mt-input input[type=file]").set_input_files(str(refused))
    toast = page.locator(".toast-wrap .toast-body, .toast-body").first
    expect(toast).to_contain_text("Invalid file type", timeout=30_000)
    notice, tabs = toast.bounding_box(), page.get_by_role("tab", name="Leaderboard").bounding_box()
    assert notice["y"] > tabs["y"] + tabs["height"] + 200, (notice, tabs)

    page.get_by_role("tab", name="Lung X-ray (U-Net vs U-Net++)").click()
    page.locator("#lung-input input[type=file]").set_input_files(str(EXAMPLES / "lung_seg" / "MCUCXR_0104_1.png"))
    stats = page.locator("#lung-stats")
    expect(stats).to_contain_text("model A U-Net, Adam", timeout=120_000)
    slider = page.locator("#lung-slider")
    frame = slider.locator(".slider-wrap").bounding_box()
    for img in slider.locator("img").all():
        box = img.bounding_box()
        assert frame["y"] - 1 <= box["y"] and box["y"] + box["height"] <= frame["y"] + frame["height"] + 1, (box, frame)
    page.locator("#lung-model-a input").click()
    page.get_by_role("option", name="U-Net++, Adam").click()
    expect(stats).to_contain_text("model A U-Net++, Adam", timeout=120_000)  # re-ran by itself


def test_skin_gate_refuses_a_chest_xray_and_classifies_dermoscopy(page, serve):
    """Issue 16: a chest X-ray gets no diagnosis (the reason, and an override beside it); a dermoscopy image next is
    classified, with the override gone."""
    from playwright.sync_api import expect

    url, _ = serve(("skin_lesion", "efficientnet-lite1"))
    page.set_viewport_size({"width": 1280, "height": 720})
    page.goto(url)
    page.get_by_role("tab", name="Skin lesion (ISIC 2017)").click()
    upload = page.locator("#skin-input input[type=file]")
    ood, info, anyway = page.locator("#skin-ood"), page.locator("#skin-info"), page.locator("#skin-show-anyway")
    upload.set_input_files(str(EXAMPLES / "lung_seg" / "CHNCXR_0012_0.png"))
    expect(ood).to_contain_text("Not classified", timeout=120_000)
    expect(info).to_contain_text("No diagnosis")
    expect(anyway).to_be_visible()
    for box in ("#skin-label", "#skin-cam"):  # no empty result boxes under the refusal (they read as a failure)
        expect(page.locator(box)).to_be_hidden()
    ood.locator("summary").click()  # the evidence, folded away under the reason
    expect(ood).to_contain_text("the gate above decides by its own checks")
    if (ROOT.parent / "shared" / "data" / "isic2017" / "ISIC-2017_Training_Data").is_dir():
        expect(ood.locator("figure img")).to_have_count(4)  # their pictures, where the dataset is on disk
    anyway.locator("input").check()
    expect(ood).to_contain_text("Raw output, shown on request", timeout=120_000)
    expect(anyway).to_be_visible()  # it can be unticked again
    expect(page.locator("#skin-cam")).to_be_visible()
    page.evaluate("window.scrollTo(0, 0)")
    cam = page.locator("#skin-cam").bounding_box()
    assert cam["y"] + cam["height"] <= 720  # the raw output's picture fits the first screen too (it ended at 794)
    upload.set_input_files(str(EXAMPLES / "skin_lesion" / "nevus_ISIC_0001852.jpg"))
    expect(ood).to_contain_text("Looks like the training images", timeout=120_000)  # (the raw view had a Grad-CAM)
    expect(info).to_contain_text("nevus_ISIC_0001852.jpg")
    expect(anyway).to_be_hidden()
    expect(page.locator("#skin-label")).to_be_visible()  # the result boxes are back for a dermoscopy image
    expect(page.locator("#skin-cam img")).to_be_visible()
    ood.locator("summary").click()  # the gate's line opens on its evidence
    expect(ood).to_contain_text("Nearest training images")
    expect(ood).to_contain_text("what the model takes it to resemble")
    from models.hub import checkpoint_dir

    if not (checkpoint_dir("skin_lesion", "efficientnet-lite1") / "meta_prior.safetensors").exists():
        return  # the tiny stand-in models carry no age/sex prior
    expect(info).to_contain_text("image only")  # issue 16: the optional age/sex prior
    page.locator("#skin-age input").press_sequentially("70", delay=50)  # age alone: the image's answer, and why
    expect(info).to_contain_text("give both age and sex", timeout=120_000)
    page.locator("#skin-sex input").click()
    page.get_by_role("option", name="Sex: male", exact=True).click()
    expect(info).to_contain_text("image + age 70, male", timeout=120_000)
    expect(info).to_contain_text("· with age 70, male")  # in the headline too
    expect(info).to_contain_text("the image alone says")
    assert page.locator("#skin-run").bounding_box()["y"] < 720  # the fields sit beside the button, in view


def test_seed_study_draws_error_bars_and_bands(page, serve):
    """Issue 18's view in Chromium: the bars carry 95 % interval whiskers with the value labels at the foot of each
    bar (they crossed the whiskers before), the curves carry mean ± std bands, and switching to OrganSMNIST, which has
    no seed study, shows the note alone: no empty plots, no BreastMNIST reference."""
    from playwright.sync_api import expect

    url, _ = serve(("breastmnist_standin", "bn"))
    page.set_viewport_size({"width": 1280, "height": 720})
    page.goto(url)
    page.get_by_role("tab", name="OrganSMNIST ablation").click()
    page.get_by_role("tab", name="Seeds and protocols").click()
    expect(page.locator("#seeds-note")).to_contain_text("seeds per step", timeout=60_000)
    bars = page.locator("#seeds-bars")
    expect(bars.locator("g.errorbar path").first).to_be_attached(timeout=30_000)
    assert bars.locator("g.errorbar path").count() >= 9  # one whisker per step and protocol
    expect(page.locator("#seeds-curves g.scatterlayer path.js-fill").first).to_be_attached()  # the ± std bands
    assert page.locator("#seeds-curves g.scatterlayer path.js-fill").count() >= 5
    # no value label overlaps a whisker: each bar's text box sits below the lower end of every whisker it meets
    overlaps = page.evaluate(
        """() => {
        const root = document.querySelector('#seeds-bars');
        const texts = [...root.querySelectorAll('g.point text')].map(t => t.getBoundingClientRect());
        const bars = [...root.querySelectorAll('g.errorbar path')].map(p => p.getBoundingClientRect());
        return texts.filter(t => bars.some(b => b.left < t.right && t.left < b.right && b.top < t.bottom
                                              && t.top < b.bottom)).length;
        }"""
    )
    assert overlaps == 0
    _shot(page, "app_ablation_seeds.png")
    page.locator("#seeds-dataset").get_by_text("OrganSMNIST").click()
    expect(page.locator("#seeds-note")).to_contain_text("No seed study", timeout=30_000)
    expect(page.locator("#seeds-bars")).to_be_hidden()
    expect(page.locator("#seeds-anchors")).to_be_hidden()
    page.locator("#seeds-dataset").get_by_text("stand-in").click()
    expect(page.locator("#seeds-bars g.errorbar path").first).to_be_attached(timeout=30_000)
