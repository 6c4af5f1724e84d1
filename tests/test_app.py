"""The app through its API (gradio_client): builds offline, predicts on a real example, survives bad inputs."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import make_image, make_mask

EXAMPLES = Path(__file__).resolve().parents[1] / "demo" / "examples" / "breast_us_seg"


def test_build_demo_loads_no_model(tiny_checkpoints):
    import app
    from models.hub import _load_cached

    _load_cached.cache_clear()
    app.build_demo()
    assert _load_cached.cache_info().currsize == 0  # start-up loads nothing; first use does


def test_segment_example_with_ground_truth(client):
    from gradio_client import handle_file

    image = EXAMPLES / "malignant_130.png"
    out = client.predict(
        handle_file(str(image)),
        handle_file(str(image.with_name("malignant_130_mask.png"))),
        0.4,
        "Overlay",
        api_name="/segment_breast",
    )
    overlay, stats, compare, gt_stats = out
    assert Image.open(overlay).size == Image.open(image).size
    assert "Inference on CPU" in stats and "| benign |" in stats
    assert Image.open(compare).size == Image.open(image).size and "Dice" in gt_stats
    dice_line = next(line for line in stats.splitlines() if "Dice" in line)  # the key number, under the verdict
    assert stats.index(dice_line) < stats.index("Inference on CPU") and dice_line in gt_stats


@pytest.mark.parametrize("kind", ["text", "truncated", "tiny", "huge", "rgba", "cmyk", "palette", "sixteen"])
def test_bad_or_odd_inputs_give_a_message_and_the_app_keeps_serving(client, tmp_path, kind):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    from tests.test_image_io import _png_header_only

    path = tmp_path / f"{kind}.png"
    buf = io.BytesIO()
    if kind == "text":
        path = tmp_path / "notes.txt"
        path.write_text("not an image")
    elif kind == "truncated":
        make_image(200, 200).save(buf, "PNG")
        path.write_bytes(buf.getvalue()[:3000])
    elif kind == "tiny":
        Image.new("L", (1, 1)).save(path)
    elif kind == "huge":
        path.write_bytes(_png_header_only(20000, 20000))
    elif kind == "rgba":
        make_image(mode="RGBA").save(path)
    elif kind == "cmyk":
        path = tmp_path / "cmyk.jpg"
        make_image(mode="CMYK").save(path)
    elif kind == "palette":
        make_image().convert("P").save(path)
    elif kind == "sixteen":
        Image.fromarray(np.asarray(make_image(), np.uint16) * 200).save(path)
    bad = kind in ("text", "truncated", "tiny", "huge")
    if bad:
        with pytest.raises(AppError) as err:
            client.predict(handle_file(str(path)), None, 0.4, "Overlay", api_name="/segment_breast")
        expected = {"text": "not an image", "truncated": "truncated", "tiny": "1x1 px", "huge": "400 MP"}[kind]
        assert expected in str(err.value)
    else:
        overlay, stats, *_ = client.predict(handle_file(str(path)), None, 0.4, "Overlay", api_name="/segment_breast")
        assert Image.open(overlay).size == (96, 80)
        if kind == "sixteen":
            assert "windowed" in stats
    # the app keeps serving after every one of them
    ok = client.predict(handle_file(str(EXAMPLES / "benign_83.png")), None, 0.4, "Overlay", api_name="/segment_breast")
    assert Path(ok[0]).exists()


def test_ground_truth_of_another_size_gives_no_dice(client, tmp_path):
    """Issue 14.2: a mask of another size belongs to another image; resizing it gave a false Dice."""
    from gradio_client import handle_file

    make_image(96, 80).save(tmp_path / "img.png")
    Image.fromarray(make_mask(48, 40)).save(tmp_path / "gt.png")
    *_, gt_stats = client.predict(
        handle_file(str(tmp_path / "img.png")),
        handle_file(str(tmp_path / "gt.png")),
        0.4,
        "Overlay",
        api_name="/segment_breast",
    )
    assert "different size" in gt_stats and "Dice" not in gt_stats.replace("no Dice", "")


def test_video_mode_segments_every_frame(client):
    from gradio_client import handle_file

    live, video, text = client.predict(
        handle_file(str(EXAMPLES / "cine_loop_synthetic.webm")),
        0.4,
        "128 px (as trained)",
        api_name="/segment_breast_video",
    )
    video = video.get("value", video) if isinstance(video, dict) else video  # an update that also shows the player
    path = video["video"] if isinstance(video, dict) else video
    path = path["path"] if isinstance(path, dict) else path
    assert Path(path).stat().st_size > 0 and "45 frames" in text and "FPS" in text
    assert "cine_loop_synthetic.webm" in text and live == ""  # the stream gives way to the loop at its source rate


def test_missing_checkpoint_message_stays_in_its_tab(tmp_path, monkeypatch):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    import app
    from demo.common import get_predictor
    from models.hub import clear_cache

    monkeypatch.setenv("CHECKPOINTS_DIR", str(tmp_path / "empty"))
    clear_cache()
    get_predictor.cache_clear()
    demo = app.build_demo()
    app.launch(demo, prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    try:
        client = Client(demo.local_url, verbose=False)
        with pytest.raises(AppError, match="No trained efsnet checkpoint"):
            client.predict(
                handle_file(str(EXAMPLES / "benign_83.png")), None, 0.4, "Overlay", api_name="/segment_breast"
            )
        table = client.predict("all", "all", "", api_name="/leaderboard")  # the leaderboard still works
        assert "rows" in table[1]
    finally:
        demo.close()


def test_an_empty_reference_mask_is_named_not_scored(client, tmp_path):
    """A normal image's empty mask: Dice says nothing there (it read "Dice 0.000"); the false-positive area does."""
    from gradio_client import handle_file

    image = EXAMPLES / "normal_2.png"
    w, h = Image.open(image).size
    Image.fromarray(np.zeros((h, w), np.uint8)).save(tmp_path / "empty.png")
    *_, gt_stats = client.predict(handle_file(str(image)), handle_file(str(tmp_path / "empty.png")), 0.4, "Overlay",
                                  api_name="/segment_breast")  # fmt: skip
    assert "mask is empty" in gt_stats and "Dice" not in gt_stats


def test_example_labels_are_distinct_in_every_tab():
    from demo.examples import example_label

    for folder in (EXAMPLES.parent / name for name in ("breast_us_seg", "lung_seg", "skin_lesion", "organsmnist")):
        images = [p for p in folder.iterdir() if p.suffix in (".png", ".jpg") and not p.stem.endswith("_mask")]
        labels = [example_label(p) for p in images]
        assert len(set(labels)) == len(labels), labels
    assert example_label("CHNCXR_0012_0.png") == "Shenzhen 12, normal"
    assert example_label("melanoma_ISIC_0012099.jpg") == "melanoma 12099"


def test_ablation_picker_breaks_an_accuracy_tie_by_f1(monkeypatch):
    """Two steps at the majority-class validation accuracy: the one that does not always answer the majority class
    (higher weighted F1) is the default; the picker opened on the majority-class Base CNN, whose AUC is higher."""
    from types import SimpleNamespace

    from demo import organsmnist as tab

    runs = {"base": (0.7308, 0.617, 0.84), "bn": (0.7308, 0.743, 0.79), "big": (0.70, 0.75, 0.90)}
    fake = {s: {"metrics": SimpleNamespace(splits={"val": {"acc": a, "f1_weighted": f, "auc": u}})}
            for s, (a, f, u) in runs.items()}  # fmt: skip
    monkeypatch.setattr(tab, "_available", lambda task, shipped=False: fake)
    choices = [(s, f"{tab.STANDIN}/{s}") for s in runs]
    assert tab.best_choice(choices) == f"{tab.STANDIN}/bn"


def test_every_font_face_the_theme_loads_has_the_latin_letters():
    """The installed Gradio's SemiBold files hold only "A", "B" and some Cyrillic: with the default theme every bold
    word drew those two letters in another face (seen in Chromium on every tab). The app's theme loads only whole
    faces."""
    import string

    ttlib = pytest.importorskip("fontTools.ttLib")
    from gradio.themes.utils.fonts import LocalFont, font_file_path

    from demo.common import theme

    t = theme()
    faces = [(f.name, w) for f in [*t._font, *t._font_mono] if isinstance(f, LocalFont) for w in f.weights]
    assert {w for _, w in faces} >= {400, 700}
    for name, weight in faces:
        cmap = ttlib.TTFont(font_file_path(name, weight)).getBestCmap()
        missing = [c for c in string.ascii_letters + string.digits if ord(c) not in cmap]
        assert not missing, (name, weight, "".join(missing))


def test_a_shipped_example_is_known_by_its_content_not_its_name(tmp_path):
    import shutil

    from demo.examples import EXAMPLES_ROOT, example_truth, shipped_example

    skin = EXAMPLES_ROOT / "skin_lesion"
    renamed = tmp_path / "upload.jpg"
    shutil.copy(skin / "seborrheic_keratosis_ISIC_0012143.jpg", renamed)
    assert example_truth(skin, renamed) == "seborrheic keratosis"  # the same image uploaded under another name
    spoof = tmp_path / "melanoma_ISIC_0012099.jpg"
    shutil.copy(EXAMPLES_ROOT / "lung_seg" / "CHNCXR_0012_0.png", spoof)
    assert example_truth(skin, spoof) is None and shipped_example(skin, None) is None  # a name alone borrows nothing
    assert example_truth(EXAMPLES_ROOT / "organsmnist", EXAMPLES_ROOT / "organsmnist" / "normal_12.png") == "normal"


def test_breast_opacity_slider_greys_out_outside_the_overlay_view():
    """A newcomer moved the opacity slider in the probability view and nothing happened: it is greyed out there, and
    named as the overlay's, without leaving its place."""
    from demo import breast_us_seg as tab

    off = tab.opacity_control(tab.VIEWS[1])
    assert off["interactive"] is False and "overlay view only" in off["label"]
    assert tab.opacity_control(tab.VIEWS[0])["interactive"] is True
