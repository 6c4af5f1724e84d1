"""Rendering helpers on numpy arrays (no gradio): class overlays and the yellow/red/green ground-truth comparison.

Used by the app (``demo/``) and by the analysis steps of ``training/`` (galleries), so both draw the same pictures.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

# class colours (RGB); chosen to stay distinct from the yellow/red/green of the ground-truth comparison map
CLASS_COLORS = {
    "background": (0, 0, 0),
    "benign": (0, 190, 255),
    "malignant": (255, 0, 200),
    "lung": (0, 190, 255),
    "tumour": (255, 0, 200),
}
FALLBACK_COLORS = [(0, 190, 255), (255, 0, 200), (255, 160, 0), (120, 80, 255), (0, 220, 140)]
COMPARISON_COLORS = {"correct": (255, 255, 0), "false positive": (255, 0, 0), "missed": (0, 255, 0)}


def class_colors(labels) -> np.ndarray:
    """``(C, 3)`` uint8 colours, index = label value; background black."""
    colors = []
    for i, name in enumerate(labels):
        colors.append(CLASS_COLORS.get(name, FALLBACK_COLORS[(i - 1) % len(FALLBACK_COLORS)]) if i else (0, 0, 0))
    return np.array(colors, dtype=np.uint8)


def to_rgb_array(image) -> np.ndarray:
    if isinstance(image, np.ndarray):
        return np.repeat(image[..., None], 3, -1) if image.ndim == 2 else image.astype(np.uint8)
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def _blend(image, where: np.ndarray, color: np.ndarray, opacity: float) -> np.ndarray:
    """``image`` (uint8 RGB) with the pixels in ``where`` replaced by ``(1 - opacity) * image + opacity * color``
    (``color``: one RGB per selected pixel), rounded; only those pixels are computed (the rest is a copy)."""
    out = to_rgb_array(image).copy()
    if where.any():
        px = out[where].astype(np.float32)
        out[where] = np.clip(np.rint((1 - opacity) * px + opacity * color.astype(np.float32)), 0, 255)
    return out


def overlay_mask(image, mask: np.ndarray, labels, opacity: float = 0.4, colors=None) -> np.ndarray:
    """Colour the labelled pixels over the image: ``opacity`` of class colour, the rest image (thesis: 0.3/0.7).
    ``colors`` (``(C, 3)``, index = label) overrides the class colours, e.g. one hue per compared model."""
    fg = mask > 0
    palette = class_colors(labels) if colors is None else np.asarray(colors, dtype=np.uint8)
    return _blend(image, fg, palette[mask[fg]], opacity)


def comparison_map(image, pred: np.ndarray, gt: np.ndarray, opacity: float = 0.5) -> np.ndarray:
    """Yellow = predicted and true (correct), red = predicted only (false positive), green = missed (GT only).

    The prediction goes in the R channel and the ground truth in G, alpha-blended over the image (the lung report's
    "third form of segmentation").
    """
    pred, gt = pred.astype(bool), gt.astype(bool)
    any_ = pred | gt
    color = np.zeros((int(any_.sum()), 3), np.uint8)
    color[:, 0], color[:, 1] = pred[any_] * 255, gt[any_] * 255
    return _blend(image, any_, color, opacity)


MODEL_A_COLOR, MODEL_B_COLOR = (0, 114, 178), (230, 159, 0)  # Okabe-Ito blue and orange: model A, model B


def disagreement_map(image, a: np.ndarray, b: np.ndarray, opacity: float = 0.6) -> np.ndarray:
    """Where two binary masks disagree: blue = only the first model, orange = only the second (the colours of the
    A | B overlays); agreement unchanged."""
    a, b = a.astype(bool), b.astype(bool)
    diff = a ^ b
    color = np.where(a[diff][:, None], np.array(MODEL_A_COLOR, np.uint8), np.array(MODEL_B_COLOR, np.uint8))
    return _blend(image, diff, color, opacity)


def image_grid(tiles: list[np.ndarray], captions: list[str], tile: int = 192, cols: int = 5) -> Image.Image:
    """Tiles (RGB arrays) resized to ``tile`` px, in rows of ``cols``, each with a caption strip below."""
    from PIL import ImageDraw

    rows = (len(tiles) + cols - 1) // cols
    cap = 18
    grid = Image.new("RGB", (cols * tile, rows * (tile + cap)), "white")
    draw = ImageDraw.Draw(grid)
    for i, (arr, text) in enumerate(zip(tiles, captions)):
        r, c = divmod(i, cols)
        grid.paste(Image.fromarray(arr).resize((tile, tile), Image.Resampling.BILINEAR), (c * tile, r * (tile + cap)))
        draw.text((c * tile + 4, r * (tile + cap) + tile + 3), text, fill="black")
    return grid


def draw_multitask(image, outputs, ellipse=None, names: dict | None = None) -> np.ndarray:
    """Every head's answer on one picture: segmentation masks tinted, detection boxes as rectangles (with their
    objectness), regression points as numbered dots, the two axes when there are four points (HC18's), and
    ``ellipse`` (``cv2.fitEllipse``'s ``((cx, cy), (w, h), angle)``, e.g. the head's) as a magenta outline. A box is
    labelled with ``names[task_id]`` where given."""
    import cv2
    from PIL import ImageDraw

    canvas = to_rgb_array(image)
    palette = [(255, 64, 64), (64, 200, 255), (255, 200, 0), (120, 255, 120)]
    for i, out in enumerate(o for o in outputs if o.mask is not None):
        n = max(int(out.mask.max()), 1)
        colors = np.array([(0, 0, 0)] + [palette[(i + k) % len(palette)] for k in range(n)], np.uint8)
        fg = (out.mask > 0)[..., None]
        canvas = np.where(fg, 0.6 * canvas + 0.4 * colors[out.mask], canvas).round().astype(np.uint8)
    width = max(2, round(max(canvas.shape[:2]) / 250))
    if ellipse is not None:
        canvas = np.ascontiguousarray(canvas)
        cv2.ellipse(canvas, ellipse, (255, 0, 255), width)
    picture = Image.fromarray(canvas)
    draw = ImageDraw.Draw(picture)
    font = _font(max(14, round(max(canvas.shape[:2]) / 22)))  # readable where the picture is shown ~300 px wide
    for out in outputs:
        if out.box is not None:
            draw.rectangle(out.box, outline=(0, 255, 0), width=width)
            name = (names or {}).get(out.task_id, out.task_id)
            # a box without a score was drawn around a mask (the tab's details say so): the box head's objectness
            # would not be its own, and "(around the mask)" ran far past a small lesion's box
            label = f"{name} {out.score:.2f}" if out.score is not None else name
            # inside the picture: shifted left where the box is near the right edge (it was cut off there)
            right = picture.width - draw.textlength(label, font=font) - 2 * width - 2
            # above the box where it fits (inside, it lay over the head's fitted ellipse, which touches the box), else
            # below it, else inside; on a dark strip, so that no line of the box runs through the text
            tall = getattr(font, "size", 14) + 2 * max(2, width) + 2
            above, below = out.box[1] - tall, out.box[3] + 2
            y = above if above >= 0 else below if below + tall <= picture.height else out.box[1] + 2
            x = max(0, min(out.box[0] + 3, right))
            left, top, end, bottom = draw.textbbox((x, y), label, font=font, stroke_width=max(2, width))
            draw.rectangle((left - 2, top - 2, end + 2, bottom + 2), fill=(0, 0, 0))
            draw.text((x, y), label, fill=(0, 255, 0), font=font, stroke_width=max(2, width),
                      stroke_fill=(0, 0, 0))  # fmt: skip
        if out.points is not None:
            pts = [tuple(map(float, p)) for p in out.points]
            if len(pts) == 4:
                draw.line([pts[0], pts[1]], fill=(255, 0, 255), width=width)
                draw.line([pts[2], pts[3]], fill=(0, 255, 255), width=width)
            r = 2 * width
            for k, (px, py) in enumerate(pts, 1):
                draw.ellipse((px - r, py - r, px + r, py + r), fill=(255, 255, 0), outline=(0, 0, 0))
                draw.text((px + r + 1, py - r), str(k), fill=(255, 255, 0), font=font, stroke_width=1,
                          stroke_fill=(0, 0, 0))  # fmt: skip
    return np.asarray(picture)


SLIDE_SIZE = (1920, 1080)


def _font(size: int, bold: bool = False):
    """DejaVu Sans where installed (Debian, most Spaces), else Pillow's bundled scalable font."""
    from PIL import ImageFont

    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    for folder in ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/dejavu"):
        try:
            return ImageFont.truetype(f"{folder}/{name}", size)
        except OSError:
            continue
    return ImageFont.load_default(size=size)


def _wrap(draw, text: str, font, width: int) -> list[str]:
    lines = []
    for paragraph in text.split("\n"):
        words, line = paragraph.split(), ""
        for word in words:
            trial = f"{line} {word}".strip()
            if draw.textlength(trial, font=font) <= width or not line:
                line = trial
            else:
                lines.append(line)
                line = word
        lines.append(line)
    return lines


def slide(image, title: str, facts: list[str], footer: str) -> Image.Image:
    """A 1920x1080 slide of one result, readable from the back of a lecture hall: the title (52 px), the result image
    on the left (fitted, at most 4x: a 256-px X-ray filled a quarter of the slide at 2x), the facts right beside it
    (34 px) and the citation at the bottom."""
    from PIL import ImageDraw

    canvas = Image.new("RGB", SLIDE_SIZE, "white")
    draw = ImageDraw.Draw(canvas)
    margin, top = 60, 150
    title_font = _font(52, bold=True)
    y = 40
    for line in _wrap(draw, title, title_font, SLIDE_SIZE[0] - 2 * margin)[:2]:
        draw.text((margin, y), line, fill="black", font=title_font)
        y += 62
    img = Image.fromarray(to_rgb_array(image))
    box = (1080, SLIDE_SIZE[1] - top - 110)
    scale = min(box[0] / img.width, box[1] / img.height, 4.0)
    img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.Resampling.LANCZOS)
    canvas.paste(img, (margin, top))
    x = margin + img.width + 60  # the facts beside the image, not past a blank middle
    width = SLIDE_SIZE[0] - x - margin
    text_font, y = _font(34), top
    for fact in facts:
        for line in _wrap(draw, fact, text_font, width):
            if y > SLIDE_SIZE[1] - 150:
                break
            draw.text((x, y), line, fill="#111", font=text_font)
            y += 44
        y += 16
    foot_font = _font(26)
    for i, line in enumerate(_wrap(draw, footer, foot_font, SLIDE_SIZE[0] - 2 * margin)[:2]):
        draw.text((margin, SLIDE_SIZE[1] - 90 + 32 * i), line, fill="#444", font=foot_font)
    return canvas
