"""The service's endpoints on the fake model: answers equal the Python API's, batching gathers
concurrent questions, a full queue gives 503, a slow model 504, and the page and docs are served."""

from __future__ import annotations

import asyncio
import io
import re
import threading
from pathlib import Path

import numpy as np
import pytest

from .conftest import AUTH, GOOD_QUESTION, GoodRecord
from .fake_model import FakeQHeart


def _client(model, **settings):
    from fastapi.testclient import TestClient

    from qheart.serving.app import create_app
    from qheart.serving.settings import ServeSettings

    return TestClient(create_app(model, ServeSettings(n_examples=1, token_env="QHEART_NO_SUCH_VAR",
                                                      **settings)), raise_server_exceptions=False)


def test_health_model_questions_and_examples(client, fake_model) -> None:
    assert client.get("/healthz").json()["status"] == "ok"  # no token needed
    info = client.get("/v1/model", headers=AUTH).json()
    assert info["model"] == fake_model.describe()
    assert info["serving"]["token_required"] is True
    assert "test-token" not in str(info)  # the token itself is never shown
    assert client.get("/v1/questions", headers=AUTH).json() == fake_model.example_questions()
    examples = client.get("/v1/examples", headers=AUTH).json()
    assert len(examples) == 2 and all(e["report"] and e["findings"] for e in examples)
    assert client.get("/v1/examples").status_code == 401


def test_multipart_wfdb_answer_equals_api(client, good_record: GoodRecord, fake_model) -> None:
    response = client.post("/v1/ask", headers=AUTH, files=good_record.files(),
                           data={"question": "What leads show ST elevation?"})
    assert response.status_code == 200, response.text
    body = response.json()
    direct = fake_model.ask(good_record.folder / "rec.hea", "What leads show ST elevation?")
    assert {k: body[k] for k in direct.to_dict()} == direct.to_dict()
    assert body["ecg"]["source"] == "rec.hea, rec.dat"
    assert body["serving"]["batch_size"] >= 1
    assert len(body["reports"]) == 3


def test_json_array_and_npy_upload_give_the_same_answer(client, good_record: GoodRecord) -> None:
    via_json = client.post("/v1/ask", headers=AUTH, json={
        "question": GOOD_QUESTION, "signal": good_record.signal.T.tolist(), "sample_rate": 500})
    via_npy = client.post("/v1/ask", headers=AUTH, data={"question": GOOD_QUESTION, "sample_rate": "500"},
                          files=[("files", ("x.npy", good_record.npy(), "application/octet-stream"))])
    assert via_json.status_code == via_npy.status_code == 200, (via_json.text, via_npy.text)
    assert via_json.json()["scores"] == via_npy.json()["scores"]
    assert via_json.json()["ecg"]["source"] == "JSON signal"


def test_example_by_id_and_generate_decoding(client) -> None:
    example = client.get("/v1/examples", headers=AUTH).json()[0]["id"]
    body = client.post("/v1/ask", headers=AUTH, json={"question": "Is the rhythm regular?",
                                                       "example": example, "decode": "generate"}).json()
    assert body["decode"] == "generate" and body["scores"] is None and body["raw_text"]
    npy = client.get(f"/v1/examples/{example}/ecg.npy", headers=AUTH)
    assert np.load(io.BytesIO(npy.content)).shape == (12, 5000)


def test_plots_are_png(client, good_record: GoodRecord) -> None:
    example = client.get("/v1/examples", headers=AUTH).json()[0]["id"]
    png = client.get(f"/v1/examples/{example}/plot.png", headers=AUTH)
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    uploaded = client.post("/v1/plot", headers=AUTH, files=good_record.files())
    assert uploaded.status_code == 200 and uploaded.content.startswith(b"\x89PNG")
    bad = client.post("/v1/plot", headers=AUTH, files=[("files", ("rec.hea", good_record.hea, "text/plain"))])
    assert bad.status_code == 422 and "rec.dat" in bad.json()["detail"]


def test_page_static_and_openapi_are_served(client) -> None:
    page = client.get("/")
    assert page.status_code == 200 and 'id="ask-form"' in page.text
    for asset in ("/static/app.js", "/static/style.css"):
        assert client.get(asset).status_code == 200
    links = re.findall(r'(?:src|href)="([^"]*)"', page.text)
    assert links and all(link.startswith(("/", "data:")) for link in links), links  # works offline
    assert "http" not in client.get("/static/app.js").text
    schema = client.get("/openapi.json").json()
    content = schema["paths"]["/v1/ask"]["post"]["requestBody"]["content"]
    assert {"multipart/form-data", "application/json"} <= set(content)
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


def test_docs_work_offline(client) -> None:
    pytest.importorskip("swagger_ui_bundle", reason="swagger-ui-bundle-v2 not installed: /docs uses the CDN")
    docs = client.get("/docs").text
    links = re.findall(r'(?:src|href|url)\s*[=:]\s*["\']([^"\']*)["\']', docs)
    assert links and all(link.startswith("/") for link in links), links
    for link in links:
        assert client.get(link).status_code == 200, link


def test_concurrent_questions_are_batched(good_record: GoodRecord) -> None:
    """12 questions in flight while the model is held: they reach ask_many in batches of up to 4."""
    model = FakeQHeart()
    model.gate = threading.Event()
    with _client(model, max_batch=4, batch_wait_ms=50) as client:
        results = []

        def ask(i: int) -> None:
            results.append(client.post("/v1/ask", json={
                "question": f"Does this ECG show finding {i}?", "signal": good_record.signal.tolist(),
                "sample_rate": 500}))

        threads = [threading.Thread(target=ask, args=(i,)) for i in range(12)]
        for t in threads:
            t.start()
        _wait_until(lambda: client.get("/healthz").json()["waiting"] >= 7)
        model.gate.set()
        for t in threads:
            t.join(30)
    assert [r.status_code for r in results] == [200] * 12
    assert sum(model.batch_sizes) == 12 and max(model.batch_sizes) == 4
    assert len(model.batch_sizes) <= 5
    assert max(r.json()["serving"]["batch_size"] for r in results) == 4


def test_batching_off_runs_one_question_per_pass(good_record: GoodRecord) -> None:
    model = FakeQHeart()
    with _client(model, max_batch=1) as client:
        example = client.get("/v1/examples").json()[0]["id"]
        for i in range(3):
            assert client.post("/v1/ask", json={"question": f"Is it {i}?", "example": example}).status_code == 200
    assert model.batch_sizes == [1, 1, 1]


def test_full_queue_answers_503_and_recovers(good_record: GoodRecord) -> None:
    model = FakeQHeart()
    model.gate = threading.Event()
    with _client(model, max_batch=1, queue_size=2, batch_wait_ms=0) as client:
        example = client.get("/v1/examples").json()[0]["id"]
        held = []

        def ask() -> None:
            held.append(client.post("/v1/ask", json={"question": GOOD_QUESTION, "example": example}))

        threads = [threading.Thread(target=ask) for _ in range(3)]  # 1 at the model + 2 queued
        for t in threads:
            t.start()
        _wait_until(lambda: client.get("/healthz").json()["waiting"] == 2)
        refused = client.post("/v1/ask", json={"question": GOOD_QUESTION, "example": example})
        assert refused.status_code == 503
        assert refused.json()["error"] == "QueueFull"
        model.gate.set()
        for t in threads:
            t.join(30)
        assert [r.status_code for r in held] == [200, 200, 200]
        again = client.post("/v1/ask", json={"question": GOOD_QUESTION, "example": example})
        assert again.status_code == 200


def test_slow_model_answers_504_and_service_stays_up() -> None:
    model = FakeQHeart()
    model.gate = threading.Event()
    with _client(model, request_timeout_s=0.5) as client:
        example = client.get("/v1/examples").json()[0]["id"]
        slow = client.post("/v1/ask", json={"question": GOOD_QUESTION, "example": example})
        assert slow.status_code == 504 and slow.json()["error"] == "Timeout"
        model.gate.set()
        assert client.post("/v1/ask", json={"question": GOOD_QUESTION, "example": example}).status_code == 200


def test_uploads_are_removed_even_when_the_model_fails(tmp_path: Path, good_record: GoodRecord) -> None:
    class Broken(FakeQHeart):
        def ask_many(self, *args, **kwargs):
            raise RuntimeError("GPU on fire")

    with _client(Broken(), upload_dir=tmp_path) as client:
        response = client.post("/v1/ask", data={"question": GOOD_QUESTION}, files=good_record.files())
        assert response.status_code == 500 and response.json()["error"] == "InternalError"
        assert list(tmp_path.iterdir()) == []
        assert client.get("/healthz").status_code == 200


def test_one_bad_question_in_a_batch_does_not_fail_the_others() -> None:
    from qheart.serving.batching import Batcher

    class Picky(FakeQHeart):
        def ask_many(self, ecgs, questions, **kwargs):
            if any("explode" in q for q in questions):
                raise ValueError("cannot parse question 'explode'")
            return super().ask_many(ecgs, questions, **kwargs)

    signal = np.asarray(FakeQHeart.load_ecg(np.tile(np.sin(np.arange(5000) / 40.0), (12, 1)), 500.0))

    async def run():
        batcher = Batcher(Picky(), max_batch=8, max_wait_s=0.05)
        tasks = [asyncio.create_task(batcher.submit(signal, q)) for q in
                 ("Is it fine?", "explode now", "Is it sinus?")]
        out = await asyncio.gather(*tasks, return_exceptions=True)
        await batcher.stop()
        return out

    good, bad, good2 = asyncio.run(run())
    assert isinstance(bad, ValueError)
    assert good[0].question == "Is it fine?" and good2[0].question == "Is it sinus?"


def _wait_until(condition, timeout_s: float = 20.0) -> None:
    import time

    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("condition not reached in time")
        time.sleep(0.02)
