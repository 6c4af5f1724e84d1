"""Breast-ultrasound tab: EFSNet on BUSI (SYSTEMS.md §5). Image mode and cine-loop (video) mode.

Upload or pick a real BUSI example; the mask is drawn over the image with class colours, a legend and adjustable
opacity (re-rendered without re-running the model); per-class area; inference time; optional ground-truth mask
giving Dice/IoU and the yellow/red/green map; a video mode that segments every frame and reports measured FPS.
"""

from __future__ import annotations

import copy
import time
import uuid
from pathlib import Path

import gradio as gr
import numpy as np
from PIL import Image

from demo.common import (
    bind_model_run,
    checkpoint_status,
    comparison_map,
    error_markdown,
    example_truth,
    footnotes,
    get_predictor,
    gpu,
    image_upload,
    legend_html,
    medical_import,
    opacity_value,
    overlay_mask,
    probability_rgb,
    read_upload,
    result_caption,
    scratch_file,
    slide_export,
    tab_intro,
    user_errors,
)
from leaderboard.results import RunResult
from models.cache import single_flight
from models.hub import checkpoint_dir
from models.image_io import ImageInputError
from models.metrics import binary_dice_iou
from models.registry import MIN_LESION_FRACTION, get_task

TASK = "breast_us_seg"
EXAMPLES_DIR = Path(__file__).with_name("examples") / TASK
MAX_VIDEO_FRAMES = 300
MAX_VIDEO_SIDE = 720
# the thesis's RGB view; its "normal" channel is the background class (no lesion), named as the table names it
VIEWS = ("Overlay", "Probability RGB (R background, G benign, B malignant)")
PROBABILITY_KEY = {"background (no lesion)": (255, 0, 0), "benign": (0, 255, 0), "malignant": (0, 0, 255)}
STATE_SIDE = 1024  # what a session keeps for re-rendering: a display-size image and mask, model-size logits
STATE_TTL_S = 1800


# measured here with the shipped EFSNet on BUSI's normal images (scripts/busi_normals.py); the predicted areas of normal
# and lesion images overlap, so no minimum area could tell them apart (38.7 % of training lesions are under 5 %)
NORMALS_NOTE = (
    " **Normal images:** EFSNet is a segmenter, not a normal-vs-lesion test: it marks a region above the 0.5 % minimum "
    "on 86 of 119 training and 10 of 14 validation normal images (median 1.8 % and 2.6 % of the image)."
)


def model_summary() -> str:
    """Markdown about the shipped checkpoint, read from its metrics.json (no weights loaded)."""
    r = RunResult.load(checkpoint_dir(TASK))
    if r is None:
        return checkpoint_status(TASK)
    m, tr = r.metrics, r.training
    size = r.resolution
    deviation = (
        f" **Deviations:** trained from scratch on {tr.get('hardware', 'unknown hardware')} for "
        f"{tr.get('epochs_run', '?')} epochs "
        f"({tr.get('train_wall_time_s', 0) / 60:.0f} min; best epoch {tr.get('best_epoch', '?')}), where the thesis "
        f"trained on a GPU and kept epoch 312"
        + (f"; input {size}x{size} instead of 256x256 to fit the CPU budget" if size != 256 else "")
        + ". See the model card for the full list."
    )
    return (
        f"EFSNet, **{r.params:,} parameters**, input 1x{size}x{size} greyscale. "
        f"Validation ({r.n} BUSI images, measured here): **DSC {100 * m['dsc']:.2f}**, mIoU {100 * m['miou']:.2f}, "
        f"acc {100 * m['acc']:.2f}; normal/tumour DSC {100 * m['dsc_t']:.2f} "
        f"(thesis at 256 px: DSC 70.44, mIoU 58.14, acc 94.06; normal/tumour DSC 79.72).{deviation}" + NORMALS_NOTE
    )


def _examples() -> list[list]:
    rows = []
    for img in sorted(EXAMPLES_DIR.glob("*.png")):
        if img.stem.endswith("_mask"):
            continue
        mask = img.with_name(f"{img.stem}_mask.png")
        rows.append([str(img), str(mask) if mask.exists() else None])
    return rows


BUSI_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "busi"


def quiz_items() -> list[tuple[str, tuple[str, ...]]]:
    """Held-out lesions with their masks: the validation split (100 images, never trained on) where BUSI is present,
    else the shipped validation examples; normal images (nothing to outline) are left out."""
    if BUSI_DATA.is_dir():
        from training.datasets import busi_split, find_busi

        return [(str(s.image), tuple(map(str, s.masks))) for s in busi_split(find_busi(BUSI_DATA), "val")
                if s.label > 0 and s.masks]  # fmt: skip
    return [(img, (mask,)) for img, mask in _examples() if mask and "normal" not in Path(img).name]


def compact_state(pred, labels) -> dict:
    """What the opacity slider and the view switch need, bounded in size: the image and the uint8 mask at most
    ``STATE_SIDE`` px on their long side, and the logits at the model's resolution in fp16 (the probability view
    upsamples them on demand). A 36 MP upload keeps a few MB, not the full-resolution float32 scores."""
    import torch.nn.functional as F

    image = pred.image
    scale = min(1.0, STATE_SIDE / max(image.size))
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    mask = pred.mask
    if scale < 1:
        image = image.resize(size, Image.BILINEAR)
        mask = np.asarray(Image.fromarray(mask).resize(size, Image.NEAREST))
    side = pred.model_size
    logits = F.interpolate(pred.logits[None].float(), size=(side, side), mode="bilinear", align_corners=False)
    return {"image": image, "mask": mask.astype(np.uint8), "labels": labels, "logits": logits[0].half()}


def _probabilities(state: dict) -> np.ndarray:
    import torch.nn.functional as F

    h, w = state["mask"].shape
    logits = F.interpolate(state["logits"][None].float(), size=(h, w), mode="bilinear", align_corners=False)[0]
    return logits.softmax(0).numpy()


def _render(state: dict | None, opacity: float, view: str):
    if not state:
        return None
    opacity = opacity_value(opacity)
    if view == VIEWS[1]:  # probabilities are computed on first use (most clicks never need them)
        return probability_rgb(_probabilities(state))
    return overlay_mask(state["image"], state["mask"], state["labels"], opacity)


def opacity_control(view: str):
    """The opacity slider works in the overlay view only: greyed out (not hidden, so nothing moves) elsewhere."""
    overlay = view == VIEWS[0]
    return gr.update(interactive=overlay, label="Mask opacity" if overlay else "Mask opacity (overlay view only)")


def view_legend(view: str) -> str:
    """One colour key per view: class colours for the overlay, the thesis's RGB channels for the probability view."""
    if view == VIEWS[1]:
        return legend_html(["background"], PROBABILITY_KEY)
    return legend_html(get_task(TASK).labels)


def _read_gt(path, size: tuple[int, int]) -> np.ndarray | None:
    """The uploaded mask as booleans, or ``None`` when its size differs from the image's: such a mask belongs to
    another image, and resizing it would give a false Dice."""
    gt_img, _ = read_upload(path)
    if gt_img.size != size:
        return None
    return np.asarray(gt_img.convert("L")) > 127


@gpu
@user_errors
def segment(image_path, gt_path, opacity: float, view: str, get_predictor=get_predictor):
    image, notes = read_upload(image_path)
    predictor = get_predictor(TASK)
    pred = predictor(image)
    labels = pred.labels
    areas = pred.class_areas()
    cells = [f"{100 * a['fraction']:.2f} % ({a['pixels']:,} px)" for a in areas.values()]
    rows = "| " + " | ".join(areas) + " |\n|" + "---|" * len(areas) + "\n| " + " | ".join(cells) + " |"
    lesion = sum(areas[n]["fraction"] for n in labels[1:])
    present = [n for n in labels[1:] if areas[n]["pixels"]]
    if lesion < MIN_LESION_FRACTION:
        verdict = "### No lesion found" + (
            f"\n(a region of {100 * lesion:.2f} % of the image is below the {100 * MIN_LESION_FRACTION:.1f} % minimum "
            "lesion size)"
            if lesion > 0
            else ""
        )
    else:
        # the class with the larger area is the answer (a newcomer read "benign (0.7 %) + malignant (8.6 %)" as both)
        ranked = sorted(present, key=lambda n: areas[n]["fraction"], reverse=True)
        verdict = (
            f"### Predicted lesion: {'mostly ' if len(ranked) > 1 else ''}{ranked[0]} "
            + (f"({100 * areas[ranked[0]]['fraction']:.1f} % of the image)")
            + "".join(f", {100 * areas[n]['fraction']:.1f} % marked {n}" for n in ranked[1:])
        )
    if pred.ood_reason:  # the result stays (a lecturer may want to show it), flagged first
        verdict = (f"### ⚠️ Not like the BUSI training images: read the mask as meaningless\n{OOD_NOTE}: "
                   f"{pred.ood_reason}.\n\n{verdict.replace('### ', '')}")  # fmt: skip
    state = compact_state(pred, labels)
    compare, gt_line = None, ""  # gt_line: the comparison with an uploaded mask, a key number
    if gt_path:
        gt = _read_gt(gt_path, image.size)
        if gt is None:
            gt_line = ("⚠️ The ground-truth mask has a different size from the image, so it belongs to another "
                       "image: no Dice computed. Upload the mask of this image.")  # fmt: skip
        else:
            fg = pred.mask > 0
            dice, iou = binary_dice_iou(fg, gt)  # lesion vs background: BUSI masks carry no class
            compare = comparison_map(image, fg, gt)
            if not gt.any():  # a normal image: Dice says nothing about it, the false-positive area does
                gt_line = "The uploaded mask is empty (no lesion, e.g. a normal image): " + (
                    "the model marks none either, which is correct."
                    if not fg.any()
                    else f"the model marks **{100 * fg.mean():.2f} %** of the image, all of it a false positive (red)."
                )
            else:
                gt_line = (f"Lesion **Dice {dice:.3f}**, **IoU {iou:.3f}** against the uploaded mask (lesion vs "
                           "background: a BUSI mask has no class, so the class is not scored).")  # fmt: skip
    # the comparison is shown under the verdict, in view, and again as the caption of its map further down
    legend = " Yellow = correct, red = false positive, green = missed." if compare is not None else ""
    reference = example_truth(EXAMPLES_DIR, image_path)  # an example: its BUSI class
    caption = result_caption(image_path, "EFSNet", reference) + class_check(
        reference, {n: areas[n]["fraction"] for n in present} if lesion >= MIN_LESION_FRACTION else {}
    )
    stats = (
        f"{verdict}\n{gt_line}\n\n{caption} · image "
        f"{image.width}x{image.height} · Inference on CPU: **{pred.latency_ms:.0f} ms** (forward {pred.model_ms:.0f} "
        f"ms, {pred.backend})\n\n{rows}" + footnotes(notes, predictor)
    )
    return _render(state, opacity, view), stats, state, compare, gt_line + legend


def class_check(reference: str | None, found: dict[str, float]) -> str:
    """The predicted class against a shipped example's BUSI label, said right after that label in the caption (no
    extra line: the picture stays in the first screen); nothing for an upload. ``found``: each predicted lesion
    class's share of the image (empty when no lesion was found); the class with the larger area is the model's."""
    if not reference:
        return ""
    if not found:
        return " (no lesion found: it matches)" if reference == "normal" else " ⚠️ (the model found no lesion)"
    if reference == "normal":
        return " ⚠️ (the model marks a lesion: a false positive)"
    answer = max(found, key=found.get)
    if answer == reference:
        return " (the larger predicted class: it matches)"
    return f" ⚠️ (the larger predicted class is **{answer}**)"


OOD_NOTE = (
    "EFSNet's out-of-distribution check (its bottleneck features against the training images'; it flags "
    "X-rays, photographs and junk, while another ultrasound, e.g. a fetal head, often passes)"
)

CINE_SIZES = {"128 px (as trained)": None, "256 px (the thesis's speed protocol)": 256}


@single_flight(maxsize=4)
def _sized_predictor(size: int, backend: str):
    """EFSNet at another input side (the thesis's 256 px); a copy of the model, so no two threads convert one
    module at once."""
    from models.hub import load_model
    from models.predict import SegmentationPredictor

    return SegmentationPredictor(copy.deepcopy(load_model(TASK)), get_task(TASK), backend=backend, size=size)


def cine_predictor(size: int | None, get_predictor=get_predictor):
    from models.runtime import backend_choice

    predictor = get_predictor(TASK) if size is None else _sized_predictor(size, backend_choice())
    if predictor.fast is not None:  # a throughput mode: let the fast path finish preparing (2-4 s, once)
        predictor.fast.wait(30)
    return predictor


def frame_jpeg(rgb: np.ndarray) -> bytes:
    import cv2

    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    return jpeg.tobytes()


def frame_html(jpeg: bytes, index: int, name: str, run: str = "") -> str:
    """One segmented frame as an inline JPEG (no file per frame); ``run`` tells one request's frames from another's."""
    import base64

    data = base64.b64encode(jpeg).decode()
    return (f'<img class="cine-frame" data-run="{run}" data-frame="{index}" alt="frame {index + 1} of {name}" '
            f'src="data:image/jpeg;base64,{data}">')  # fmt: skip


def write_webm(path: Path, jpegs: list[bytes], fps: float) -> None:
    """The streamed frames (their JPEGs) as a WebM to download, encoded after the stream: VP8 costs ~17 ms a frame
    here, more than the network at 256 px, so it would halve the live frame rate on 2 cores."""
    import cv2

    writer = None
    try:
        for data in jpegs:
            bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            if writer is None:
                writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"VP80"), fps, (bgr.shape[1], bgr.shape[0]))
            writer.write(bgr)
    finally:
        if writer is not None:
            writer.release()


@gpu(duration=120)
@user_errors
def segment_video(video_path, opacity: float, size_choice: str | None = None, get_predictor=get_predictor):
    """Segment every frame (up to MAX_VIDEO_FRAMES), streaming each overlay to the page as soon as it is ready, with
    the measured throughput; the last update replaces the stream with the segmented loop as a WebM that plays at the
    source's frame rate (streamed as fast as ready, a 3-second loop would flash past in under a second)."""
    import cv2

    if not video_path:
        raise ImageInputError("Upload a video first (or click the example).")
    if size_choice not in (None, *CINE_SIZES):
        raise ImageInputError(f"Network input must be one of: {', '.join(CINE_SIZES)}.")
    cap = cv2.VideoCapture(str(video_path))
    if not cap.isOpened():
        raise ImageInputError("This file is not a video the app can read (MP4, WebM, AVI, MOV).")
    fps_in = cap.get(cv2.CAP_PROP_FPS) or 15.0
    name = Path(str(video_path)).name
    predictor = cine_predictor(CINE_SIZES.get(size_choice), get_predictor)
    run = uuid.uuid4().hex
    out_path = scratch_file("video", f"{run}.webm")  # bounded: old outputs are pruned
    jpegs, n, model_ms, html = [], 0, [], ""
    start = time.perf_counter()

    def stats(final: bool) -> str:
        elapsed = time.perf_counter() - start
        head = f"Segmented **{n} frames**" if final else f"Streaming: frame {n}"
        return (
            f"{head} of `{name}` (source {fps_in:.0f} fps, EFSNet at {predictor.size} px on {predictor.backend}): "
            f"**{n / elapsed:.1f} FPS** end to end on this CPU (decode, model, overlay, encode, send), "
            # the median frame: the mean swung from 54 to 218 FPS between runs of one video (a slow first frame, load)
            f"{1e3 / max(float(np.median(model_ms)), 1e-6):.1f} FPS for the model alone (median frame; one run, it "
            "varies with the server's load)."
        )

    try:
        while n < MAX_VIDEO_FRAMES:
            ok, frame = cap.read()
            if not ok:
                break
            h, w = frame.shape[:2]
            scale = min(1.0, MAX_VIDEO_SIDE / max(h, w))
            if scale < 1:
                frame = cv2.resize(frame, (int(w * scale) // 2 * 2, int(h * scale) // 2 * 2))
            image = Image.fromarray(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))
            pred = predictor(image, gate=False)  # a video's frames: speed first (the image tab checks)
            rgb = overlay_mask(image, pred.mask, pred.labels, opacity_value(opacity))
            model_ms.append(pred.model_ms)
            jpegs.append(frame_jpeg(rgb))  # ~20-60 kB a frame: 300 frames stay under 20 MB
            html = frame_html(jpegs[-1], n, name, run[:8])
            n += 1
            hide_loop = gr.update(value=None, visible=False) if n == 1 else gr.skip()  # the previous run's loop
            yield html, hide_loop, stats(False) if n % 15 == 1 else gr.skip()
    finally:
        cap.release()
    if n == 0:
        raise ImageInputError("No frames could be decoded from this video.")
    text = stats(True)  # the live stream's rate; the WebM to download is encoded after it
    write_webm(out_path, jpegs, fps_in)
    text += (
        f"{' Only the first ' + str(MAX_VIDEO_FRAMES) + ' frames.' if n == MAX_VIDEO_FRAMES else ''} "
        "Thesis: 81.6 FPS on an RTX 4060 laptop GPU, 10.6 FPS on an Intel Core i7 (model only)."
    )
    # the stream has run as fast as it could; the loop now plays at its source rate where the frames were
    yield "", gr.update(value=str(out_path), visible=True), text


def build_tab(get_predictor=get_predictor) -> None:
    spec = get_task(TASK)
    tab_intro(f"{spec.system}: model, data, deviations and validation numbers", model_summary())
    with gr.Tabs():
        with gr.Tab("Image"):
            with gr.Row():
                with gr.Column(scale=1):
                    with gr.Row():
                        image_in = image_upload(label="Ultrasound image", sources=["upload", "clipboard"], height=220,
                                                elem_id="breast-input", scale=3)  # fmt: skip
                        gt_in = image_upload(label="Ground-truth mask (optional)", sources=["upload"], height=220,
                                             elem_id="breast-gt", scale=2)  # fmt: skip
                    run = gr.Button("Segment", variant="primary", elem_id="breast-run")
                    example_column = gr.Column()
                    medical_import(image_in, "breast-medical")
                with gr.Column(scale=1):
                    message = gr.Markdown(elem_id="breast-message", elem_classes="tab-error")
                    stats = gr.Markdown(elem_id="breast-stats", elem_classes="key-result")
                    output = gr.Image(
                        label="Segmentation",
                        type="numpy",
                        height=250,
                        elem_id="breast-output",
                        interactive=False,
                        format="png",
                    )
                    legend = gr.HTML(view_legend(VIEWS[0]), elem_id="breast-legend")
                    with gr.Row():
                        opacity = gr.Slider(0.0, 1.0, value=0.4, step=0.05, label="Mask opacity")
                        view = gr.Radio(list(VIEWS), value=VIEWS[0], label="View")
                    slide_export(output, stats, TASK, "breast", message)
            with gr.Row(visible=False) as compare_row:  # shown while a ground-truth mask is given (else empty)
                compare = gr.Image(
                    label="Against the ground truth",
                    type="numpy",
                    height=300,
                    interactive=False,
                    format="png",
                    elem_id="breast-compare",
                )
                gt_stats = gr.Markdown(elem_id="breast-gt-stats")
            state = gr.State(time_to_live=STATE_TTL_S)

            def _segment(image_path, gt_path, opacity_value, view_value):
                return segment(image_path, gt_path, opacity_value, view_value, get_predictor=get_predictor)

            outputs = [output, stats, state, compare, gt_stats]
            with example_column:
                bind_model_run(_segment, [image_in, gt_in, opacity, view], outputs, run=run, message=message,
                               api_name="segment_breast", upload=image_in, clear=[gt_in], examples_rows=_examples(),
                               examples_inputs=[image_in, gt_in], examples_label="Real BUSI validation images (with "
                               "their masks)", permalink=TASK, opacity=opacity, rerun=[gt_in])  # fmt: skip
            for control in (opacity, view):
                control.change(_render, [state, opacity, view], output, api_name=False, show_progress="hidden")
            view.change(view_legend, [view], [legend], api_name=False, queue=False)
            view.change(opacity_control, [view], [opacity], api_name=False, queue=False)
            gt_in.change(lambda gt: gr.update(visible=gt is not None), [gt_in], [compare_row], api_name=False,
                         queue=False)  # fmt: skip
        with gr.Tab("Quiz"):
            from demo.quiz import segmentation_quiz, truth_from_files

            segmentation_quiz("breast", "Outline the lesion", quiz_items,  # held-out BUSI images: no gate needed
                              lambda image: get_predictor(TASK)(image, gate=False).mask > 0,
                              truth_from_files, "EFSNet")  # fmt: skip
        with gr.Tab("Cine loop (video)"):
            with gr.Row():
                with gr.Column(scale=1):
                    video_in = gr.Video(label="Ultrasound video", sources=["upload"], elem_id="breast-video-in",
                                        height=180)  # fmt: skip
                    examples = sorted(EXAMPLES_DIR.glob("*.webm"))
                    if examples:
                        gr.Examples(
                            [[str(p)] for p in examples],
                            inputs=[video_in],
                            label="Synthetic cine loop (a still BUSI image moved and re-noised; BUSI has no videos):"
                            " click it, then Segment video",
                            elem_id="breast-video-examples",
                        )
                    with gr.Row(equal_height=True):
                        cine_size = gr.Radio(list(CINE_SIZES), value=next(iter(CINE_SIZES)), label="Network input",
                                             elem_id="breast-video-size", scale=3)  # fmt: skip
                        video_run = gr.Button("Segment video", variant="primary", elem_id="breast-video-run",
                                              scale=1)  # fmt: skip
                with gr.Column(scale=1):
                    video_message = gr.Markdown(elem_id="breast-video-message", elem_classes="tab-error")
                    video_stats = gr.Markdown(
                        "Ultrasound is watched as cine loops. Each frame is segmented independently on this CPU and "
                        f"shown here as soon as it is ready (at most {MAX_VIDEO_FRAMES} frames; frames larger than "
                        f"{MAX_VIDEO_SIDE} px are scaled down); the throughput is measured, not estimated. The 256-px "
                        "input runs the 128-px model at the thesis's speed-test size (for speed; its masks are "
                        "coarser).",
                        elem_id="breast-video-stats",
                        elem_classes="key-result",
                    )
                    video_live = gr.HTML(elem_id="breast-video-live", elem_classes="cine-live")
                    video_out = gr.Video(label="Segmented loop (at the source's frame rate; download: the arrow, "
                                         "top right)", elem_id="breast-video-out", interactive=False, autoplay=True,
                                         loop=True,
                                         height=300, visible=False)  # fmt: skip

            def _video(path, opacity_value, size_choice):
                yield from segment_video(path, opacity_value, size_choice, get_predictor=get_predictor)

            def _video_in_tab(path, opacity_value, size_choice):
                """The button's run: a problem stays in this tab's message box and clears the last run's result."""
                try:
                    for live, loop, text in _video(path, opacity_value, size_choice):
                        yield live, loop, text, ""
                except gr.Error as exc:
                    yield "", gr.update(value=None, visible=False), "", error_markdown(str(exc.message))

            inputs = [video_in, opacity, cine_size]
            # a new video (the example, an upload) clears the last run's warning ("Upload a video first" stayed)
            video_in.change(lambda _: "", [video_in], [video_message], api_name=False, queue=False)
            video_api = gr.Button(visible=False, elem_classes="api-only")
            video_api.click(_video, inputs, [video_live, video_out, video_stats], api_name="segment_breast_video",
                            concurrency_limit=1)  # fmt: skip
            video_run.click(
                _video_in_tab,
                inputs,
                [video_live, video_out, video_stats, video_message],
                api_name=False,
                concurrency_limit=1,
                show_progress="hidden",
            )  # fmt: skip  (the stream and its frame counter show progress)
