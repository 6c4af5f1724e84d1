"""Registry contract: names, lookups and the app's tabs follow the registry."""

from __future__ import annotations

import pytest

from models.registry import TASKS, build_model, get_task, get_variant

EXPECTED = {"breast_us_seg", "lung_seg", "organsmnist", "skin_lesion", "ultrasound_multitask"}


def test_registry_has_the_five_tasks():
    assert {t for t, s in TASKS.items() if s.shown_in is None} == EXPECTED  # + the stand-in, inside a task's tab
    for name, spec in TASKS.items():
        assert spec.name == name
        assert spec.default_variant in spec.variants
        assert spec.primary_metric in spec.metrics


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(KeyError, match="breast_us_seg"):
        get_task("nope")
    with pytest.raises(KeyError, match="efsnet"):
        get_variant("breast_us_seg", "unet")


def test_demo_tabs_follow_the_registry():
    import demo

    assert list(demo.TABS) == [t for t, s in TASKS.items() if s.shown_in is None]
    assert all(TASKS[s.shown_in].shown_in is None for s in TASKS.values() if s.shown_in)  # hosted by a real tab


@pytest.mark.parametrize("task", list(TASKS))
def test_tasks_build(task):
    model = build_model(task)
    assert model.input_size == get_task(task).input_size
