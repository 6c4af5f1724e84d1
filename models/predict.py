"""Predictors: an image in, a typed result out, in original image coordinates. Pure torch; no gradio.

Every predictor uses the task's evaluation preset (``models.transforms.eval_preset``, the same preprocessing as
``training.evaluate``), runs under ``torch.inference_mode`` and times itself.

Example:
    >>> from models.hub import load_model
    >>> from models.registry import get_task
    >>> predictor = SegmentationPredictor(load_model(task), get_task(task))
    >>> pred = predictor(Image.open("us.png"))
    >>> pred.mask.shape == (Image.open("us.png").height, Image.open("us.png").width)
    True
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from models.image_io import load_image
from models.transforms import eval_preset


def runtime_device() -> torch.device:
    """CUDA inside a ZeroGPU call (``SPACES_ZERO_GPU`` set and a GPU attached to this request), else the CPU."""
    import os

    return torch.device("cuda" if os.environ.get("SPACES_ZERO_GPU") and torch.cuda.is_available() else "cpu")


def on_device(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Move ``model`` (once) and ``x`` to ``runtime_device()``; a no-op on the CPU."""
    device = runtime_device()
    if next(model.parameters()).device != device:
        model.to(device)
    return x.to(device)


@dataclass
class SegPrediction:
    """Segmentation result.

    Attributes:
        mask: ``(H, W)`` uint8 label map at the original image size (0 = background).
        logits: ``(C, H, W)`` float32 logits resized to the original size (``C == 1`` for a one-logit binary model).
        probs: ``(C', H, W)`` float32 probabilities at the original size, computed on first access (the tabs need
            them only for the probability view): softmax, or ``(1 - p, p)`` for a one-logit model.
        labels: class names, index = label value.
        model_ms: forward pass only; latency_ms: the whole call (decode, preprocess, forward, resize back, mask).
        backend: what ran the network ("OpenVINO", "ONNX Runtime" or "PyTorch").
        ood_reason: why the image does not look like the training images (``models.ood``), or ``None`` (it does, or
            the checkpoint has no statistics, or the gate was not asked for).
    """

    mask: np.ndarray
    logits: torch.Tensor
    labels: tuple[str, ...]
    model_ms: float
    latency_ms: float
    image: Image.Image
    backend: str = "PyTorch"
    model_size: int = 256  # the side the network saw (the logits' own resolution before resizing)
    ood_reason: str | None = None
    ood_distance: float | None = None  # the bottleneck features' Mahalanobis distance (None: not scored)
    ood_threshold: float | None = None

    @property
    def looks_out_of_distribution(self) -> bool:
        return self.ood_reason is not None

    @functools.cached_property
    def probs(self) -> np.ndarray:
        if self.logits.shape[0] == 1:
            p = self.logits.sigmoid()
            return torch.cat([1 - p, p], 0).numpy()
        return self.logits.softmax(0).numpy()

    def class_areas(self) -> dict[str, dict[str, float]]:
        """Pixels and fraction of the image per class."""
        counts = np.bincount(self.mask.ravel(), minlength=len(self.labels))
        total = self.mask.size
        return {
            name: {"pixels": int(counts[i]), "fraction": float(counts[i] / total)} for i, name in enumerate(self.labels)
        }


class SegmentationPredictor:
    """Segment one image with a trained segmentation model (e.g. EFSNet).

    Logits are bilinearly resized from the model resolution to the original size before softmax/arg-max, so the
    mask follows lesion borders at full resolution. The network runs on ``backend`` (default: the app's
    fast path, ``models.runtime``: OpenVINO for networks within its parameter budget, e.g. EFSNet at 3.4-4.7x a plain
    PyTorch forward) once it is prepared, in PyTorch until then and wherever it fails. ``size`` overrides the
    network's input side (the cine mode's speed check at the thesis's 256 px; default the size it was trained at).
    """

    def __init__(self, model: torch.nn.Module, spec, backend: str | None = None, size: int | None = None,
                 replicas: int = 2, ood=None):  # fmt: skip
        from models.runtime import LazyRuntime

        self.ood = ood  # models.ood.MahalanobisOOD on the bottleneck features, or None
        self.model = model.eval().to(memory_format=torch.channels_last)
        self.labels = tuple(getattr(model, "labels", None) or spec.labels)
        self.size = int(size or model.input_size)
        self.preset = eval_preset(spec, self.size)
        self.fast = (
            LazyRuntime.for_model(model, (1, spec.in_channels, self.size, self.size), backend, pool=replicas)
            if runtime_device().type == "cpu"
            else None
        )

    @classmethod
    def for_model(cls, model: torch.nn.Module, spec, replicas: int = 1) -> SegmentationPredictor:
        """``TaskSpec.predictor``'s constructor: the predictor of a loaded model, with its out-of-distribution
        statistics (``ood.safetensors``, ``training.ood_fit --task``) when the folder has them."""
        from models.hub import companion_file
        from models.ood import FILENAME, MahalanobisOOD

        stats = companion_file(model, FILENAME)
        return cls(model, spec, replicas=max(2, replicas), ood=MahalanobisOOD.load(stats.parent) if stats else None)

    @property
    def backend(self) -> str:
        return self.fast.name if self.fast is not None else "PyTorch"

    def out_of_distribution(self, image: Image.Image, x: torch.Tensor) -> tuple[float, str | None]:
        """``(distance, reason)``: why ``image`` (``x`` as the network gets it) does not look like the training
        images, or ``None``: the uniform-image check, then the Mahalanobis distance of the bottleneck features (one
        PyTorch encoder pass)."""
        from models.ood import bottleneck_features, colour_statistics

        distance = float(self.ood.distance(bottleneck_features(self.model, on_device(self.model, x)).cpu())[0])
        return distance, self.ood.check(distance, *colour_statistics(image))

    @torch.inference_mode()
    def __call__(self, image, gate: bool = True) -> SegPrediction:
        """Segment ``image``; ``gate=False`` skips the out-of-distribution check (a video's frames, the quiz)."""
        t0 = time.perf_counter()
        if not isinstance(image, Image.Image) or image.mode not in ("L", "RGB"):
            image, _ = load_image(image)
        x = self.preset(image)[None].contiguous(memory_format=torch.channels_last)
        t1 = time.perf_counter()
        backend = self.backend
        if backend != "PyTorch":
            logits = self.fast(x)[0]
        else:
            logits = self.model(on_device(self.model, x)).cpu()
        t2 = time.perf_counter()
        # back to a plain layout first: resizing, softmax and arg-max over a channels-last tensor are 10-20x slower
        logits = F.interpolate(logits.contiguous(), size=(image.height, image.width), mode="bilinear",
                               align_corners=False)  # fmt: skip
        logits = logits[0]
        if logits.shape[0] == 1:  # one-logit binary model: sigmoid > 0.5 <=> logit > 0
            mask = (logits[0] > 0).to(torch.uint8).numpy()
        else:  # arg-max of the logits = arg-max of the softmax; max().indices is ~25x faster than argmax(0) here
            mask = logits.max(0).indices.to(torch.uint8).numpy()
        distance, reason = self.out_of_distribution(image, x) if gate and self.ood is not None else (None, None)
        t3 = time.perf_counter()
        return SegPrediction(
            mask=mask,
            logits=logits,
            labels=self.labels,
            model_ms=(t2 - t1) * 1e3,
            latency_ms=(t3 - t0) * 1e3,
            image=image,
            backend=backend,
            model_size=self.size,
            ood_reason=reason,
            ood_distance=distance,
            ood_threshold=self.ood.threshold if distance is not None else None,
        )


TTA_FLIPS = {"id": [], "h": [-1], "v": [-2], "hv": [-2, -1]}  # test-time views: dims flipped on (B, C, H, W)


def checked_views(views) -> tuple[str, ...]:
    """``views`` as a tuple, refused unless it has the image itself ("id") and only flips in ``TTA_FLIPS``."""
    if set(views) - set(TTA_FLIPS) or "id" not in views:
        raise ValueError(f"TTA views must include 'id' and be among {', '.join(TTA_FLIPS)}; got {tuple(views)}")
    return tuple(views)


def served_views(model) -> tuple[str, ...]:
    """The test-time views a model folder ships (``tta.json``: chosen on out-of-fold predictions for the skin models,
    the protocol's mirror for the ablation's adapted run); the image alone where it has none."""
    import json

    from models.hub import companion_file

    tta = companion_file(model, "tta.json")
    return checked_views(json.loads(tta.read_text())["views"]) if tta else ("id",)


@dataclass
class ClassPrediction:
    """Classification result: ``probs`` per label (softmax), the ``seen`` uint8 image the model actually got."""

    probs: dict[str, float]
    seen: np.ndarray
    model_ms: float
    latency_ms: float

    def top(self, k: int = 3) -> list[tuple[str, float]]:
        return sorted(self.probs.items(), key=lambda kv: kv[1], reverse=True)[:k]


class ClassificationPredictor:
    """Classify one image with a MedMNIST-style 28 px model (``MedMNISTPreset``: box resize, mean/std 0.5)."""

    @classmethod
    def for_model(cls, model: torch.nn.Module, spec, replicas: int = 1) -> ClassificationPredictor:
        """``TaskSpec.predictor``'s constructor: the predictor of a loaded model, with its test-time views
        (``tta.json``, written where the training protocol averaged the mirror image in)."""
        return cls(model, spec, views=served_views(model))

    def __init__(self, model: torch.nn.Module, spec, views: tuple[str, ...] = ("id",)):
        self.views = checked_views(views)  # as training.ablate.predict: the views' logits are averaged, then softmax
        self.model = model.eval()
        self.labels = tuple(getattr(model, "labels", None) or spec.labels)
        self.preset = eval_preset(spec, model.input_size)  # MedMNISTPreset: box resize

    @torch.inference_mode()
    def __call__(self, image) -> ClassPrediction:
        t0 = time.perf_counter()
        if not isinstance(image, Image.Image) or image.mode not in ("L", "RGB"):
            image, _ = load_image(image)
        seen = self.preset.thumbnail(image)
        x = self.preset.normalize(seen)[None]  # from the thumbnail: the image is reduced once, not twice
        t1 = time.perf_counter()
        batch = torch.cat([x.flip(TTA_FLIPS[v]) if TTA_FLIPS[v] else x for v in self.views])
        probs = self.model(on_device(self.model, batch)).cpu().float().mean(0).softmax(0)
        t2 = time.perf_counter()
        return ClassPrediction(
            probs={name: float(p) for name, p in zip(self.labels, probs)},
            seen=seen,
            model_ms=(t2 - t1) * 1e3,
            latency_ms=(time.perf_counter() - t0) * 1e3,
        )


@dataclass
class SkinPrediction:
    """Skin-lesion result: softmax ``probs`` per label, the model ``input`` tensor (for Grad-CAM), the OOD distance
    and threshold (``None`` when the checkpoint has no OOD statistics)."""

    probs: dict[str, float]
    input: torch.Tensor
    ood_distance: float | None
    ood_threshold: float | None
    model_ms: float
    latency_ms: float
    image: Image.Image
    ood_reason: str | None = None  # why the image looks out of distribution (None: it does not, or no statistics)
    temperature: float = 1.0  # the calibration applied to ``probs``
    nearest: list | None = None  # [(training image id, label, cosine similarity)], the nearest in feature space
    meta: object | None = None  # models.meta_prior.Meta combined into ``probs`` (None: the image alone)
    image_probs: dict[str, float] | None = None  # the image model's own probabilities, before the age/sex prior
    backend: str = "PyTorch"  # what ran the classifier (``models.runtime``)

    @property
    def predicted(self) -> int:
        return int(np.argmax(list(self.probs.values())))

    @property
    def looks_out_of_distribution(self) -> bool:
        return self.ood_reason is not None

    @property
    def margin(self) -> float:
        """Top-1 minus top-2 probability: small means the model cannot tell the two apart."""
        top = sorted(self.probs.values(), reverse=True)
        return top[0] - (top[1] if len(top) > 1 else 0.0)


class SkinPredictor:
    """Classify a dermoscopy image (``IsicPreset``: resize to 8/7 of the input size, centre crop, ImageNet
    normalisation) and score how far its features are from the training images (``models.ood``).

    Thread-safe: the feature hook and Grad-CAM's hooks see every forward of the module they sit on, so each request
    borrows a module of its own from a pool of ``replicas`` copies (the app sizes it to its model concurrency, so no
    request waits; a request beyond it waits for a free copy)."""

    @classmethod
    def for_model(cls, model: torch.nn.Module, spec, replicas: int = 1, backend: str | None = None) -> SkinPredictor:
        """``TaskSpec.predictor``'s constructor, with the model folder's companion files: the OOD statistics
        (``ood.safetensors``) and the temperature fitted on out-of-fold predictions (``calibration.json``);
        ``backend``: the inference path (default: the app's, ``models.runtime``)."""
        import json

        from models.hub import companion_file
        from models.meta_prior import FILENAME as META_PRIOR
        from models.meta_prior import MetaPrior
        from models.ood import FILENAME, NEIGHBOURS, MahalanobisOOD, TrainingNeighbours

        stats = companion_file(model, FILENAME)
        ood = MahalanobisOOD.load(stats.parent) if stats else None
        gallery = companion_file(model, NEIGHBOURS)  # the nearest training images: the gate's evidence
        neighbours = TrainingNeighbours.load(gallery.parent) if gallery else None
        calibration = companion_file(model, "calibration.json")
        temperature = json.loads(calibration.read_text())["temperature"] if calibration else 1.0
        views = served_views(model)  # test-time augmentation chosen on out-of-fold predictions
        prior = companion_file(model, META_PRIOR)  # the age/sex prior (issue 16), fitted on the model's training images
        meta_prior = MetaPrior.load(prior) if prior else None
        return cls(model, spec, ood, replicas=replicas, temperature=temperature, views=views, neighbours=neighbours,
                   meta_prior=meta_prior, backend=backend)  # fmt: skip

    def __init__(self, model: torch.nn.Module, spec, ood=None, replicas: int = 1, temperature: float = 1.0,
                 views: tuple[str, ...] = ("id",), neighbours=None, meta_prior=None,
                 backend: str | None = None):  # fmt: skip
        import copy
        import queue

        from models.ood import FeaturesAndLogits
        from models.runtime import LazyRuntime, backend_choice

        self.views = checked_views(views)  # one batched forward over the image and its flips; the softmax is averaged
        self.temperature = float(temperature)  # fitted on out-of-fold predictions (calibration.json)
        self.model = model.eval()
        self.labels = tuple(getattr(model, "labels", None) or spec.labels)
        from models.ood import GATE_SIZE

        self.preset = eval_preset(spec, model.input_size)  # IsicPreset: resize, centre crop
        self.gate_preset = eval_preset(spec, GATE_SIZE)  # the ImageNet gate's crop, for models of other sizes
        self.ood = ood
        self.neighbours = neighbours  # models.ood.TrainingNeighbours or None
        self.meta_prior = meta_prior  # models.meta_prior.MetaPrior; None: age and sex are never used
        served = self.serving_copy(self.model)
        self.pool: queue.Queue = queue.Queue()
        for i in range(max(1, replicas)):
            self.pool.put(served if i == 0 else copy.deepcopy(served))
        # the fast path (``models.runtime``): by default only within FAST_PATH_MAX_PARAMS (a memory budget), so the
        # app's skin models stay on PyTorch unless it is raised or ``backend`` is given; the gate follows the same rule
        if (backend or backend_choice()) == "onnxruntime":
            backend = "pytorch"  # the ONNX path exports one-output graphs only
        self.backend_asked = backend
        shape = (len(self.views), 3, model.input_size, model.input_size)
        pool = max(1, replicas)
        cpu = runtime_device().type == "cpu"
        self.fast = LazyRuntime.for_model(served, shape, backend, pool=pool, wrap=FeaturesAndLogits) if cpu else None

    @property
    def backend(self) -> str:
        return self.fast.name if self.fast is not None else "PyTorch"

    @staticmethod
    def serving_copy(model: torch.nn.Module) -> torch.nn.Module:
        """What serves: a copy with BatchNorm folded into the convolutions (Grad-CAM's layer kept as it is),
        channels-last; the same outputs to ~1e-5, 2.2x faster on the CPU for Lite1 with two TTA views
        (``bench.skin_speed``)."""
        from models.runtime import fold_batchnorm

        keep = (model.gradcam_layer(),) if hasattr(model, "gradcam_layer") else ()
        return fold_batchnorm(model, keep=keep).to(memory_format=torch.channels_last)

    def served_probs(self, logits: torch.Tensor) -> torch.Tensor:
        """(B, C) probabilities from the logits of ``len(self.views)`` view batches stacked view-major ((V * B, C)):
        the temperature-scaled softmax, averaged over the views (TTA). The app and the evaluator share it."""
        probs = (logits.float() / self.temperature).softmax(1)
        return probs.view(len(self.views), -1, probs.shape[1]).mean(0)

    def view_batch(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> the served views stacked view-major, channels-last."""
        batch = torch.cat([x.flip(TTA_FLIPS[v]) if TTA_FLIPS[v] else x for v in self.views])
        return batch.contiguous(memory_format=torch.channels_last)

    def gate_input(self, image: Image.Image) -> torch.Tensor:
        """The ImageNet gate's input for a model of another input size: the task's preprocessing at 224 px."""
        return self.gate_preset(image)[None]

    def borrow(self):
        """A model copy that no other request uses meanwhile."""
        from models.cache import borrowed

        return borrowed(self.pool)

    @torch.inference_mode()
    def __call__(self, image, meta=None) -> SkinPrediction:
        """``meta``: a ``models.meta_prior.Meta`` (age, sex); where the checkpoint ships an age/sex prior and both are
        given, ``probs`` combine it with the image (``image_probs`` keep the image's own)."""
        from models.ood import penultimate_features

        t0 = time.perf_counter()
        if not isinstance(image, Image.Image) or image.mode not in ("L", "RGB"):
            image, _ = load_image(image)
        image = image.convert("RGB")
        x = self.preset(image)[None]
        batch = self.view_batch(x)
        t1 = time.perf_counter()
        backend = self.backend
        if backend != "PyTorch":
            features, logits = self.fast(batch)
        else:
            with self.borrow() as model:  # the feature hook must see this request's forward only
                features, logits = (t.cpu() for t in penultimate_features(model, on_device(model, batch)))
        t2 = time.perf_counter()
        features = features[self.views.index("id")][None]  # the OOD statistics are of the image itself
        probs = self.served_probs(logits)[0]
        distance = reason = None
        if self.ood is not None:
            from models.ood import GATE_SIZE, IMAGENET_SPACE, colour_statistics, imagenet_features

            if self.ood.space == IMAGENET_SPACE:  # the same 224-px crop whatever this model's input size
                gx = x if self.preset.size == GATE_SIZE else self.gate_input(image)
                gate = imagenet_features(gx, self.backend_asked)
            else:
                gate = features
            distance = float(self.ood.distance(gate)[0])
            reason = self.ood.check(distance, *colour_statistics(image))
        nearest = self.neighbours.nearest(features) if self.neighbours is not None else None
        image_probs = {name: float(p) for name, p in zip(self.labels, probs)}
        used = meta if self.meta_prior is not None and meta is not None and meta.known else None
        if used is not None:
            probs = torch.from_numpy(self.meta_prior.combine(probs[None].numpy(), [used])[0])
        return SkinPrediction(
            probs={name: float(p) for name, p in zip(self.labels, probs)},
            image_probs=image_probs,
            meta=used,
            input=x,
            ood_distance=distance,
            ood_threshold=self.ood.threshold if self.ood is not None else None,
            ood_reason=reason,
            nearest=nearest,
            temperature=self.temperature,
            model_ms=(t2 - t1) * 1e3,
            latency_ms=(time.perf_counter() - t0) * 1e3,
            image=image,
            backend=backend,
        )

    def grad_cam(self, prediction: SkinPrediction, target: int) -> np.ndarray:
        """Grad-CAM of ``target`` over the original image (RGB uint8)."""
        from models.explain import grad_cam, heatmap_overlay

        with self.borrow() as model:  # Captum's hooks must see this request's forward only
            cam = grad_cam(model, on_device(model, prediction.input.clone()), target)
        # the CAM covers the centre crop; place it on the resized full frame, then on the original image
        base, size = self.preset.base, self.preset.size
        full = np.zeros((base, base), np.float32)
        off = (base - size) // 2
        full[off : off + size, off : off + size] = cam
        return heatmap_overlay(prediction.image, full)


@dataclass
class TaskOutput:
    """One head's answer in original pixels: ``mask`` (H, W) int labels (seg), ``probs`` (cls), ``box``
    ``(x1, y1, x2, y2)`` + ``score`` (det, the objectness of the arg-max cell), ``points`` (k, 2) (reg)."""

    task_id: str
    kind: str
    labels: tuple[str, ...] = ()
    mask: np.ndarray | None = None
    probs: dict[str, float] | None = None
    box: tuple[float, float, float, float] | None = None
    score: float | None = None
    points: np.ndarray | None = None


@dataclass
class MultiTaskPrediction:
    image: Image.Image
    outputs: dict[str, TaskOutput]
    model_ms: float
    latency_ms: float
    axes_organs: frozenset = frozenset()  # organs whose model has a 4-point axes head (HC18's): their masks give an HC
    organ_probs: dict | None = None  # which organ the image looks like (``models.multitask.OrganProbe``)
    backend: str = "PyTorch"  # what ran the network
    ood_reason: str | None = None  # why the image is unlike the training images (``models.ood``), or None
    ood_distance: float | None = None  # the pooled encoder features' Mahalanobis distance (None: not scored)
    ood_threshold: float | None = None

    @property
    def looks_out_of_distribution(self) -> bool:
        return self.ood_reason is not None

    def head_circumference_px(self, source: str = "points") -> float | None:
        """HC18's head circumference in pixels: ``"points"`` the ellipse through the four axis end points of a
        4-point regression head; ``"mask"`` the ellipse fitted to the head segmentation of the same organ (largest
        component, holes filled, ``cv2.fitEllipse``, Ramanujan's perimeter). ``None`` when that head did not run."""
        from models.fmc_metrics import circumference_from_mask, circumference_from_points

        axes = [o for o in self.outputs.values() if o.kind == "Regression" and o.points is not None
                and len(o.points) == 4]  # fmt: skip
        if source == "points":
            return circumference_from_points(axes[0].points) if axes else None
        mask = self.head_mask()
        return circumference_from_mask(mask) if mask is not None else None

    def mask_found(self, seg_task_id: str) -> bool | None:
        """Whether a segmentation head found its structure: a region of at least the head's minimum share of the image
        (``models.registry.MIN_FOUND_FRACTION``: a BUSI lesion 0.5 %; other heads any pixel). ``None`` when it did
        not run."""
        from models.registry import MIN_FOUND_FRACTION

        seg = self.outputs.get(seg_task_id)
        if seg is None or seg.kind != "segmentation" or seg.mask is None:
            return None
        fraction = float((seg.mask > 0).mean())
        return fraction > 0 and fraction >= MIN_FOUND_FRACTION.get(seg_task_id, 0.0)

    def mask_box(self, det_task_id: str) -> tuple[int, int, int, int] | None:
        """The box of a detection task read off its organ's segmentation (``breast_lesion_det`` <- ``breast_lesion``:
        the largest component's box), when that segmentation ran and found its structure (``mask_found``); else
        ``None``. Where the mask ran and found nothing, the app draws no box at all (the box heads were trained on
        images that have one, so they propose a box on every image, a normal breast included)."""
        from models.fmc_metrics import box_from_mask

        seg_task_id = det_task_id.removesuffix("_det") if det_task_id.endswith("_det") else None
        if seg_task_id is None or not self.mask_found(seg_task_id):
            return None
        return box_from_mask(self.outputs[seg_task_id].mask)

    def organ_verdict(self, task_id: str) -> str | None:
        """The arg-max label of the same organ's classification head that knows a "normal" class (``breast_3cls``
        for ``breast_lesion_det``), when it ran; else ``None``."""
        organ = task_id.split("_")[0]
        for o in self.outputs.values():
            if o.kind == "classification" and o.probs and o.task_id.split("_")[0] == organ and "normal" in o.probs:
                return max(o.probs, key=o.probs.get)
        return None

    def drawn_box(self, det_task_id: str, fallback: bool = True) -> tuple[tuple, str] | None:
        """The box the app draws for a detection task, and where it comes from: ``"mask"``, the box around the organ
        mask's largest region (``mask_box``), where that mask found its structure; where it ran and found none,
        ``"box head"``, the detection head's own box, but only when the organ's class head ran and says it is not
        normal (``organ_verdict``; issue 15: the box heads saw only images with a lesion, so they propose one on
        every image, and the class head is what tells a normal breast apart); else ``None``, no box. A task without
        an organ mask draws the box head's box."""
        box = self.mask_box(det_task_id)
        if box is not None:
            return box, "mask"
        out = self.outputs.get(det_task_id)
        if out is None or out.box is None:
            return None
        seg_task_id = det_task_id.removesuffix("_det")
        if self.mask_found(seg_task_id) is None:  # no organ mask ran: the head's box, as it always was
            return tuple(out.box), "box head"
        verdict = self.organ_verdict(det_task_id)
        if fallback and verdict is not None and verdict != "normal":
            return tuple(out.box), "box head"
        return None

    def head_mask(self) -> np.ndarray | None:
        """The segmentation of an organ whose model has a 4-point (axes) regression head, when it ran."""
        for o in self.outputs.values():
            if o.kind == "segmentation" and o.mask is not None and o.task_id.split("_")[0] in self.axes_organs:
                return o.mask
        return None


def tasks_by_organ(task_ids) -> dict[str, list[str]]:
    """Task ids grouped by organ, the first part of the id (``breast_3cls`` -> ``breast``, ``fetal_head`` ->
    ``fetal``), in the given order."""
    groups: dict[str, list[str]] = {}
    for task_id in task_ids:
        groups.setdefault(task_id.split("_")[0], []).append(task_id)
    return groups


class AllHeads(torch.nn.Module):
    """A ``MultiTaskNet`` as one graph for a fast backend: every head, then the pooled encoder features."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model
        self.task_ids = list(model.tasks)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out, pooled = self.model.forward_tasks(x, self.task_ids, pooled=True)
        return (*(out[t] for t in self.task_ids), pooled)


# how a multitask mask reaches the original size: the logits resized before the arg-max, as SegmentationPredictor
# does (chosen on the training split, issue 15: logs/decisions.txt)
MASK_RESIZE = "bilinear"


class MultiTaskPredictor:
    """Run chosen heads of a ``MultiTaskNet`` on one image (the evaluator's preprocessing: resize to the model's
    input size, the encoder's mean/std) and map every answer back to original pixels (seg: the logits resized
    bilinearly, then the arg-max, as ``SegmentationPredictor`` does, where the challenge's own inference resizes the
    arg-max mask with nearest neighbour: ``MASK_RESIZE``; det: the arg-max objectness cell's box; reg: points).
    On the fast backend (``models.runtime``, once prepared) one graph runs every head (``AllHeads``); the chosen ones
    are kept. Their cost is the encoder's, which every head shares."""

    @classmethod
    def for_model(cls, model: torch.nn.Module, spec=None, replicas: int = 1) -> MultiTaskPredictor:
        """``TaskSpec.predictor``'s constructor, with the organ check (``organs.safetensors``, ``training.organ_fit``)
        and the out-of-distribution gate (``ood.safetensors``, ``training.ood_fit --task ultrasound_multitask``)
        fitted beside the weights, where they are."""
        from models.hub import companion_file
        from models.multitask import ORGAN_PROBE, OrganProbe
        from models.ood import FILENAME, MahalanobisOOD

        probe, stats = companion_file(model, ORGAN_PROBE), companion_file(model, FILENAME)
        return cls(model, OrganProbe.load(probe.parent) if probe else None, replicas=max(2, replicas),
                   ood=MahalanobisOOD.load(stats.parent) if stats else None)  # fmt: skip

    def __init__(self, model: torch.nn.Module, organ_probe=None, backend: str | None = None, replicas: int = 2,
                 ood=None):  # fmt: skip
        from models.runtime import LazyRuntime, backend_choice
        from models.transforms import multitask_eval_transform

        self.organ_probe = organ_probe  # models.multitask.OrganProbe, when fitted
        self.ood = ood  # models.ood.MahalanobisOOD on the same pooled features, when fitted
        self.mask_resize = MASK_RESIZE
        self.model = model.eval()
        self.size = model.input_size
        self.transform = multitask_eval_transform(self.size, model.mean, model.std)
        if (backend or backend_choice()) == "onnxruntime":
            backend = "pytorch"  # the ONNX path exports one-output graphs only
        self.fast = (
            LazyRuntime.for_model(AllHeads(model), (1, 3, self.size, self.size), backend, pool=replicas)
            if runtime_device().type == "cpu"
            else None
        )

    @property
    def backend(self) -> str:
        return self.fast.name if self.fast is not None else "PyTorch"

    @property
    def organs(self) -> dict[str, list[str]]:
        return tasks_by_organ(self.model.tasks)

    def labels(self, task_id: str) -> tuple[str, ...]:
        kind, n = self.model.tasks[task_id]
        names = self.model.labels.get(task_id)
        if names:
            return tuple(names)
        return (
            tuple(f"point {i + 1}" for i in range(n)) if kind == "Regression" else tuple(f"class {i}" for i in range(n))
        )

    @torch.inference_mode()
    def __call__(self, image, task_ids: list[str]) -> MultiTaskPrediction:
        t0 = time.perf_counter()
        if not isinstance(image, Image.Image) or image.mode not in ("L", "RGB"):
            image, _ = load_image(image)
        image = image.convert("RGB")
        w, h = image.size
        x = self.transform(image)[None]
        t1 = time.perf_counter()
        organ_probs = None
        backend = self.backend
        unknown = [t for t in task_ids if t not in self.model.tasks]
        if unknown:
            raise KeyError(f"unknown task(s) {unknown}; this model has {', '.join(self.model.tasks)}")
        if backend != "PyTorch":
            *heads, pooled = self.fast(x)
            raw = {t: heads[i] for i, t in enumerate(self.model.tasks) if t in task_ids}
            raw = {t: raw[t] for t in task_ids}  # in the asked order
        else:
            raw, pooled = self.model.forward_tasks(on_device(self.model, x), list(task_ids), pooled=True)
            raw = {k: v.cpu() for k, v in raw.items()}
        if self.organ_probe is not None:
            organ_probs = self.organ_probe(pooled.cpu()[0])
        distance = reason = None
        if self.ood is not None:
            from models.ood import colour_statistics

            distance = float(self.ood.distance(pooled.cpu().float().reshape(1, -1))[0])
            reason = self.ood.check(distance, *colour_statistics(image))
        t2 = time.perf_counter()
        outputs = {}
        for task_id, out in raw.items():
            kind = self.model.tasks[task_id][0]
            o = TaskOutput(task_id, kind, self.labels(task_id))
            out = out.float()
            if kind == "segmentation" and self.mask_resize == "bilinear":  # as SegmentationPredictor does
                logits = F.interpolate(out, size=(h, w), mode="bilinear", align_corners=False)
                o.mask = logits.max(1).indices[0].numpy()  # = argmax, faster over the channel dim
            elif kind == "segmentation":
                labels = out.max(1, keepdim=True).indices.float()
                o.mask = F.interpolate(labels, size=(h, w), mode="nearest")[0, 0].long().numpy()
            elif kind == "classification":
                o.probs = {name: float(p) for name, p in zip(o.labels, out.softmax(1)[0])}
            elif kind == "detection":
                cell = int(out[0, 4].flatten().argmax())
                x1, y1, x2, y2 = out[0, :4].flatten(1)[:, cell].tolist()
                o.box = (min(x1, x2) * w, min(y1, y2) * h, max(x1, x2) * w, max(y1, y2) * h)
                o.score = float(out[0, 4].flatten()[cell].sigmoid())
            else:
                o.points = out[0].view(-1, 2).numpy() * np.array([w, h])
            outputs[task_id] = o
        axes_organs = frozenset(t.split("_")[0] for t, (kind, n) in self.model.tasks.items() if kind == "Regression"
                                and n == 4)  # fmt: skip
        return MultiTaskPrediction(image, outputs, (t2 - t1) * 1e3, (time.perf_counter() - t0) * 1e3, axes_organs,
                                   organ_probs, backend, reason, distance,
                                   None if distance is None else self.ood.threshold)  # fmt: skip
