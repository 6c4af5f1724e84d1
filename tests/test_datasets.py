"""BUSI readers: both layouts, mask union, class-valued masks, the fixed split, the train augmentation."""

from __future__ import annotations

import json

import torch

from conftest import make_synthetic_busi
from training.datasets import (
    BUSI_DUPLICATES,
    BUSI_SPLIT_FILE,
    BusiSegDataset,
    busi_split,
    find_busi,
    read_busi_mask,
)


def test_both_layouts_read_the_same_samples(tmp_path):
    shared = find_busi(make_synthetic_busi(tmp_path / "a"))
    kaggle = find_busi(make_synthetic_busi(tmp_path / "b", kaggle_layout=True))
    assert [(s.name, s.label, len(s.masks)) for s in shared] == [(s.name, s.label, len(s.masks)) for s in kaggle]
    assert {s.label for s in shared} == {0, 1, 2}


def test_mask_union_and_class_values(synthetic_busi):
    samples = {s.name: s for s in find_busi(synthetic_busi)}
    two = samples["benign (1)"]
    assert len(two.masks) == 2
    union = read_busi_mask(two)
    single = read_busi_mask(samples["benign (2)"])
    assert union.dtype == torch.int64 and set(union.unique().tolist()) == {0, 1}
    assert union[:8, :8].all() and (union.sum() > single.sum())  # the corner came from _mask_1
    assert set(read_busi_mask(samples["malignant (1)"]).unique().tolist()) == {0, 2}
    assert read_busi_mask(samples["normal (1)"]).sum() == 0


def test_train_items_are_augmented_and_typed(synthetic_busi):
    samples = find_busi(synthetic_busi)
    ds = BusiSegDataset(samples, size=32, train=True)
    x, y = ds[0]
    assert x.shape == (1, 32, 32) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    assert y.shape == (32, 32) and y.dtype == torch.int64 and set(y.unique().tolist()) <= {0, 1, 2}
    assert not torch.equal(ds[0][0], ds[0][0])  # a new random augmentation on every draw
    val, val_again = BusiSegDataset(samples, size=32), BusiSegDataset(samples, size=32)
    assert torch.equal(val[0][0], val_again[0][0]) and torch.equal(val[0][1], val_again[0][1])  # no augmentation


def test_small_collections_get_a_fresh_split(synthetic_busi):
    samples = find_busi(synthetic_busi)
    train, val = busi_split(samples, "train"), busi_split(samples, "val")
    assert len(val) == 2 and len(train) == 10 and not {s.name for s in train} & {s.name for s in val}


def test_real_busi_split_is_the_saved_680_100(busi_dir):
    samples = find_busi(busi_dir)
    assert len(samples) == 780 and sum(len(s.masks) for s in samples) == 798
    assert sum(len(s.masks) > 1 for s in samples) == 17
    train, val = busi_split(samples, "train"), busi_split(samples, "val")
    assert (len(train), len(val)) == (680, 100)
    saved = json.loads(BUSI_SPLIT_FILE.read_text())
    assert sorted(s.name for s in val) == sorted(saved["val"])
    sides = {name: ("val" if name in saved["val"] else "train") for name in BUSI_DUPLICATES}
    assert len(set(sides.values())) == 1  # the byte-identical pair never straddles the split
    assert sum(s.label > 0 for s in val) >= 80  # the thesis had 82 tumour images in val
