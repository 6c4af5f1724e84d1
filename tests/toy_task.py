"""A toy task that lives entirely in this module: ``tests/test_registry_contract.py`` registers it and checks that
training, evaluation, prediction, the leaderboard and a tab all work with no edit anywhere else (issue 17).

Two classes of 16x16 greyscale squares: "dark" (mean 0.3) and "bright" (mean 0.7), with noise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.base import HubModel
from models.registry import TaskSpec, VariantSpec
from training.recipes import Recipe

LABELS = ("dark", "bright")


class ToyNet(HubModel, pipeline_tag="image-classification", tags=["toy"]):
    def __init__(self, input_size: int = 16, labels: list[str] | None = None, width: int = 4):
        super().__init__()
        self.input_size = input_size
        self.labels = tuple(labels or LABELS)
        self.net = nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                 nn.Linear(width, len(self.labels)))  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def make_data(folder: Path, n: int = 24, seed: int = 0) -> Path:
    """``folder/{train,val,test}.npz`` with ``images`` uint8 (n, 16, 16) and ``labels`` int64."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for split in ("train", "val", "test"):
        labels = np.arange(n) % 2
        images = np.clip(rng.normal(0.3 + 0.4 * labels[:, None, None], 0.08, (n, 16, 16)) * 255, 0, 255)
        np.savez(folder / f"{split}.npz", images=images.astype(np.uint8), labels=labels.astype(np.int64))
    return folder


def _tensors(data_dir, split: str, spec) -> tuple[torch.Tensor, torch.Tensor]:
    data = np.load(Path(data_dir) / f"{split}.npz")
    x = (torch.from_numpy(data["images"]).float() / 255 - spec.mean[0]) / spec.std[0]
    return x[:, None], torch.from_numpy(data["labels"])


class ToyRecipe(Recipe):
    def datasets(self):
        return (torch.utils.data.TensorDataset(*_tensors(self.cfg.data_dir, "train", self.spec)),
                torch.utils.data.TensorDataset(*_tensors(self.cfg.data_dir, "val", self.spec)))  # fmt: skip

    def loss(self, logits, target):
        return {"loss": F.cross_entropy(logits, target)}

    def optimizer(self, model):
        return torch.optim.Adam(model.parameters(), lr=self.cfg.lr)

    @torch.inference_mode()
    def validate(self, model, loader, accelerator):
        logits, labels = zip(*[(model(x), y) for x, y in loader])
        logits, labels = torch.cat(logits), torch.cat(labels)
        return {"val_loss": float(F.cross_entropy(logits, labels)),
                "val_acc": float((logits.argmax(1) == labels).float().mean())}  # fmt: skip


@torch.inference_mode()
def evaluate(model, data_dir, split: str, spec) -> dict:
    x, y = _tensors(data_dir, split, spec)
    acc = float((model(x).argmax(1) == y).float().mean())
    return {"n": len(y), "dataset": f"toy squares, {split} split", "metrics": {"acc": acc}}


def card_notes(saved: dict, progress: dict) -> str:
    return f"## Deviations\n\n* A toy: {progress['epoch']} epochs on synthetic squares."


class ToyPredictor:
    def __init__(self, model, spec):
        self.model, self.spec = model.eval(), spec

    @classmethod
    def for_model(cls, model, spec, replicas: int = 1) -> ToyPredictor:
        return cls(model, spec)

    @torch.inference_mode()
    def __call__(self, image) -> dict[str, float]:
        grey = np.asarray(image.convert("L").resize((self.model.input_size,) * 2), dtype=np.float32) / 255
        x = (torch.from_numpy(grey)[None, None] - self.spec.mean[0]) / self.spec.std[0]
        probs = self.model(x).softmax(1)[0]
        return {label: float(p) for label, p in zip(self.model.labels, probs)}


def build_tab() -> None:
    import gradio as gr

    from demo.common import get_predictor

    image = gr.Image(type="pil", label="Image", elem_id="toy-input")
    run = gr.Button("Classify", elem_id="toy-run")
    label = gr.Label(elem_id="toy-label")
    run.click(lambda im: get_predictor("toy")(im), image, label, api_name="classify_toy")


SPEC = TaskSpec(
    name="toy",
    title="Toy squares",
    kind="classification",
    labels=LABELS,
    in_channels=1,
    input_size=16,
    mean=(0.5,),
    std=(0.25,),
    variants={"tiny": VariantSpec("tests.toy_task:ToyNet", {"width": 4}, "Tiny CNN")},
    default_variant="tiny",
    metrics=("acc",),
    primary_metric="acc",
    dataset="toy squares (synthetic)",
    system="a test's toy task",
    tab="tests.toy_task:build_tab",
    predictor="tests.toy_task:ToyPredictor",
    recipe="tests.toy_task:ToyRecipe",
    evaluator="tests.toy_task:evaluate",
    held_out="test",
    card_notes="tests.toy_task:card_notes",
    train_preset=dict(model="tiny", epochs=3, batch_size=8, lr=0.05, select="last", seed=0),
)
