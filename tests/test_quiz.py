"""The quiz (issue 19.1): scoring, the student's drawing, held-out items."""

from __future__ import annotations

import numpy as np
import pytest


def test_identical_masks_score_one_and_disjoint_masks_zero():
    from demo.quiz import score_masks

    a = np.zeros((20, 20), bool)
    a[2:10, 2:10] = True
    b = np.zeros_like(a)
    b[12:18, 12:18] = True
    assert score_masks(a, a, a) == {"you vs truth": 1.0, "model vs truth": 1.0, "you vs model": 1.0}
    assert score_masks(a, b, b)["you vs truth"] == 0.0 and score_masks(a, b, b)["model vs truth"] == 1.0
    assert score_masks(a, b, a)["you vs model"] == 0.0


def test_the_outlines_become_a_mask_and_a_picture(tmp_path):
    """The student's clicked outlines (image pixels, each closed by itself) fill a mask of the image's size; an
    outline of fewer than three points does not count; the picture shows them on the image."""
    import gradio as gr
    from PIL import Image

    from demo.quiz import outline_mask, outline_picture

    square, triangle = [[10, 10], [30, 10], [30, 30], [10, 30]], [[50, 60], [70, 60], [60, 80]]
    mask = outline_mask([square, triangle, [[0, 0], [5, 5]]], (80, 100))
    assert mask.shape == (100, 80) and mask[20, 20] and mask[65, 60] and not mask[90, 5] and not mask[2, 2]
    with pytest.raises(gr.Error, match="Nothing is outlined"):
        outline_mask([[[1, 1], [2, 2]]], (5, 5))
    path = tmp_path / "image.png"
    Image.new("L", (80, 100), 40).save(path)
    picture = outline_picture(path, [square])
    assert picture.shape == (100, 80, 3) and picture[20, 20, 0] > picture[90, 5, 0]  # tinted inside the outline


def test_quiz_items_are_held_out_images_with_their_truth():
    from demo.breast_us_seg import quiz_items as breast
    from demo.lung_seg import sweep_images
    from demo.skin_lesion import quiz_items as skin

    assert breast() and all(masks for _, masks in breast()) and not any("normal" in img for img, _ in breast())
    assert sweep_images(60)[0]
    assert skin() and {label for _, label in skin()} == {0, 1, 2}
    from demo.ultrasound_multitask import _examples, quiz_items

    assert len(quiz_items()) == 3 and not any("_mask" in row[0] for row in _examples())  # truths are not examples


def test_a_new_round_shows_an_image_not_played_yet():
    """Round 3 of 3 once showed round 1's image again; the next image avoids every image played this session."""
    from demo.quiz import _next

    items = [(f"/data/img{i}.png", f"/data/img{i}_mask.png") for i in range(3)]
    for _ in range(20):
        assert _next(lambda: items, items[1], ["img0.png", "img1.png"])[0] == "/data/img2.png"
    assert _next(lambda: items, items[2], ["img0.png", "img1.png", "img2.png"])[0] != "/data/img2.png"  # all played
    assert _next(lambda: [], None) is None
