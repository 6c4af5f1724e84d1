"""Issue 16: an age/sex prior for the skin-lesion classifier (the ISIC 2017 metadata: approximate age, sex).

Two estimates of the class, one from the image and one from age and sex, each carrying the class prior once, are
combined by the product-of-posteriors rule, ``p(c|x, meta) ∝ p_cnn(c|x) · p(c|meta) / p(c)`` (exact where the image
and the metadata are independent given the class and ``p_cnn`` is a posterior under the same prior). ``p(c|meta)`` is
a small multinomial logistic regression on ``[age/100, (age/100)^2, age missing, male, sex unknown]`` and ``p(c)`` the
class frequencies, both fitted on the image model's own training images. The rule was fixed before any look
(logs/decisions.txt, session 14); the class-weighted loss makes the CNN's softmax closer to class-balanced, so the
division leans towards the rarer classes; no variant was tried. Unless both age and sex are known the image model's
answer stands (``combine`` keeps those rows; ``Meta.known``).
Stored as ``meta_prior.safetensors`` beside the model (weights load only from safetensors).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

SEXES = ("male", "female")
FILENAME = "meta_prior.safetensors"


@dataclass(frozen=True)
class Meta:
    """One patient's metadata: ``age`` in years (``None`` unknown), ``sex`` "male" / "female" / ``None``."""

    age: float | None = None
    sex: str | None = None

    @property
    def known(self) -> bool:
        """Both age and sex given: the prior applies. With either missing the image's answer stands, because the
        fitted indicators of missing values learn where ISIC's metadata-less images come from, not anything about
        a user who leaves a field empty (logs/decisions.txt, session 14)."""
        return self.age is not None and self.sex in SEXES


def parse_meta(age, sex) -> Meta:
    """From CSV cells or form fields: ages outside 0-120 or unreadable and sexes other than male/female are unknown."""
    try:
        a = float(age)
        a = a if 0 <= a <= 120 else None
    except (TypeError, ValueError):
        a = None
    s = str(sex).strip().lower() if sex is not None else None
    return Meta(a, s if s in SEXES else None)


def read_isic_metadata(root: str | Path, split: str) -> dict[str, Meta]:
    """``ISIC-2017_<Split>_Data_metadata.csv`` of the official layout (``image_id, age_approximate, sex``) as
    ``{image_id: Meta}``; an empty dict where the split has no metadata file. Cross-validation folds read the
    training split's file."""
    import csv
    import re

    from training.datasets import ISIC_SPLITS

    if re.fullmatch(r"cv\d+-\d+-(train|val)", split):
        split = "train"
    names = [ISIC_SPLITS[split]] + (["Test"] if split == "test" else [])
    for name in names:
        path = Path(root) / f"ISIC-2017_{name}_Data_metadata.csv"
        if path.exists():
            with path.open(newline="") as f:
                return {r["image_id"]: parse_meta(r.get("age_approximate"), r.get("sex")) for r in csv.DictReader(f)}
    return {}


class MetaPrior:
    """``p(c|meta)`` (multinomial logistic regression) and ``p(c)``; ``combine`` applies Bayes' rule above."""

    def __init__(self, coef: np.ndarray, intercept: np.ndarray, prior: np.ndarray, age_fill: float):
        self.coef, self.intercept, self.prior, self.age_fill = coef, intercept, prior, float(age_fill)

    def features(self, metas: list[Meta]) -> np.ndarray:
        a = np.array([m.age / 100 if m.age is not None else self.age_fill for m in metas])
        missing = np.array([m.age is None for m in metas], dtype=float)
        male = np.array([m.sex == "male" for m in metas], dtype=float)
        unknown = np.array([m.sex not in SEXES for m in metas], dtype=float)
        return np.stack([a, a**2, missing, male, unknown], 1)

    @classmethod
    def fit(cls, metas: list[Meta], labels, num_classes: int = 3) -> MetaPrior:
        from sklearn.linear_model import LogisticRegression

        y = np.asarray(labels)
        ages = [m.age / 100 for m in metas if m.age is not None]
        prior = np.bincount(y, minlength=num_classes) / len(y)
        probe = cls(np.zeros((num_classes, 5)), np.zeros(num_classes), prior, np.median(ages) if ages else 0.5)
        lr = LogisticRegression(C=1.0, max_iter=1000).fit(probe.features(metas), y)
        return cls(lr.coef_, lr.intercept_, prior, probe.age_fill)

    def probs(self, metas: list[Meta]) -> np.ndarray:
        z = self.features(metas) @ self.coef.T + self.intercept
        z = np.exp(z - z.max(1, keepdims=True))
        return z / z.sum(1, keepdims=True)

    def combine(self, p_image: np.ndarray, metas: list[Meta], every_row: bool = False) -> np.ndarray:
        """``p(c|x, meta)`` for rows with both age and sex known; the other rows keep ``p_image`` (as the app serves
        it). ``every_row``: the form registered before the CV, missing values as the regression's indicators."""
        p_image = np.asarray(p_image, dtype=float)
        post = np.clip(p_image, 1e-8, None) * self.probs(metas) / self.prior
        post /= post.sum(1, keepdims=True)
        known = np.array([every_row or m.known for m in metas])[:, None]
        return np.where(known, post, p_image)

    def save(self, path: str | Path) -> None:
        import torch
        from safetensors.torch import save_file

        t = {"coef": self.coef, "intercept": self.intercept, "prior": self.prior, "age_fill": np.array([self.age_fill])}
        save_file({k: torch.tensor(np.ascontiguousarray(v), dtype=torch.float64) for k, v in t.items()}, str(path))

    @classmethod
    def load(cls, path: str | Path) -> MetaPrior:
        from safetensors.torch import load_file

        t = {k: v.numpy() for k, v in load_file(str(path)).items()}
        return cls(t["coef"], t["intercept"], t["prior"], float(t["age_fill"][0]))
