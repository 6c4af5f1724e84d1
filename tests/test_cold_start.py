"""Issue 21.1: a cold server and several simultaneous first requests on every model endpoint. Each predictor (and
the model under it) is built once per key (``models.cache.single_flight``); the server stays up and every request
answers."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EX = ROOT / "demo" / "examples"


def test_single_flight_builds_each_key_once_under_concurrency():
    from models.cache import single_flight

    calls: list[tuple] = []
    lock = threading.Lock()

    @single_flight(maxsize=4)
    def build(task: str, variant: str | None = None):
        with lock:
            calls.append((task, variant))
        time.sleep(0.2)  # a slow build: every thread arrives while the first is still building
        return object()

    with ThreadPoolExecutor(16) as pool:
        first = list(pool.map(lambda i: build("a"), range(8)))
        second = list(pool.map(lambda i: build("b", None) if i % 2 else build("b"), range(8)))
    assert len({id(x) for x in first}) == 1 and len({id(x) for x in second}) == 1
    assert calls == [("a", None), ("b", None)]  # f(a) and f(a, None) are one key


def test_single_flight_does_not_cache_a_failure():
    from models.cache import single_flight

    attempts = []

    @single_flight()
    def flaky(key):
        attempts.append(key)
        if len(attempts) == 1:
            raise RuntimeError("first build fails")
        return key

    try:
        flaky("x")
    except RuntimeError:
        pass
    assert flaky("x") == "x" and len(attempts) == 2


def test_cold_server_answers_simultaneous_first_requests_on_every_model_endpoint(client):
    from gradio_client import handle_file

    breast = handle_file(str(next((EX / "breast_us_seg").glob("*.png"))))
    lung = handle_file(str(next((EX / "lung_seg").glob("*.png"))))
    organ = handle_file(str(next((EX / "organsmnist").glob("*.png"))))
    skin = handle_file(str(next((EX / "skin_lesion").glob("*.jpg"))))
    calls = {
        "/segment_breast": (breast, None, 0.4, "Overlay"),
        "/compare_lung": (lung, None, "unet", "unet-sgd"),
        "/classify_organ": (organ, "breastmnist_standin/bn"),
        "/classify_skin": (skin, "customnet", "predicted class"),
        "/multitask": (breast, "breast", ["breast_3cls", "breast_lesion"], None),
    }
    k = 4
    jobs = [(api, args) for api, args in calls.items() for _ in range(k)]
    with ThreadPoolExecutor(len(jobs)) as pool:
        results = list(pool.map(lambda job: client.predict(*job[1], api_name=job[0]), jobs))
    assert len(results) == len(jobs) and all(r is not None for r in results)
    # the server is still up and answers again
    assert client.predict(breast, None, 0.4, "Overlay", api_name="/segment_breast")[1]
