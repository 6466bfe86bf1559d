"""60 malformed requests: each gets a 4xx JSON error naming the problem, the next good request is
answered exactly as the Python API answers it, no upload is left on disk, and RSS stays bounded."""

from __future__ import annotations

import io
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tests.data.ecg_fixtures import PTBXL_NAMES, synthetic_ecg, write_wfdb_record

from .conftest import AUTH, GOOD_QUESTION, MAX_UPLOAD, GoodRecord


def _wfdb(signal: np.ndarray, fs: float = 500, names=PTBXL_NAMES, name: str = "rec") -> tuple[bytes, bytes]:
    with tempfile.TemporaryDirectory() as tmp:
        write_wfdb_record(tmp, name, signal, fs, names)
        return (Path(tmp) / f"{name}.hea").read_bytes(), (Path(tmp) / f"{name}.dat").read_bytes()


def _npy(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def _ecg(seconds: float = 10, fs: float = 500, n_leads: int = 12) -> np.ndarray:
    return synthetic_ecg(n_leads, fs, seconds, seed=5)


def _pair(hea: bytes, dat: bytes, hea_name: str = "rec.hea", dat_name: str = "rec.dat"):
    return [("files", (hea_name, hea, "text/plain")), ("files", (dat_name, dat, "application/octet-stream"))]


def _one(name: str, data: bytes):
    return [("files", (name, data, "application/octet-stream"))]


def _ask_files(files, question: str = GOOD_QUESTION, **fields) -> dict:
    return {"method": "POST", "url": "/v1/ask", "headers": AUTH,
            "data": {"question": question, **fields}, "files": files}


def _ask_json(payload, headers=None) -> dict:
    body = payload if isinstance(payload, bytes) else json.dumps(payload, allow_nan=True).encode()
    return {"method": "POST", "url": "/v1/ask", "content": body,
            "headers": {**AUTH, "Content-Type": "application/json", **(headers or {})}}


def _header_with(hea: bytes, old: str, new: str) -> bytes:
    text = hea.decode()
    assert old in text, (old, text)
    return text.replace(old, new, 1).encode()


@dataclass(frozen=True)
class Case:
    name: str
    request: Callable[[GoodRecord], dict]
    statuses: tuple[int, ...]
    """Acceptable 4xx statuses."""
    mentions: str
    """A word the error's `detail` (or `error`) must contain (case-insensitive)."""


def _flat_ecg() -> np.ndarray:
    x = _ecg()
    x[4] = 0.2  # aVL disconnected: constant
    return x


def _nan_ecg() -> np.ndarray:
    x = _ecg()
    x[7, 1000:1100] = np.nan
    return x


def _chunks(total: int):
    block = b"x" * 65536
    for _ in range(total // len(block) + 1):
        yield block


CASES: list[Case] = [
    # ---------------------------------------------------------------- WFDB uploads
    Case("truncated_dat", lambda g: _ask_files(_pair(g.hea, g.dat[: len(g.dat) // 2])), (422,), "truncated"),
    Case("dat_longer_than_header", lambda g: _ask_files(_pair(g.hea, g.dat + g.dat[:2400])), (422,), "longer"),
    Case("header_11_signals_data_12",
         lambda g: _ask_files(_pair(b"\n".join(_header_with(g.hea, "rec 12 ", "rec 11 ").split(b"\n")[:12]) + b"\n",
                                    g.dat)), (422,), "rec"),
    Case("header_5000_samples_data_2500",
         lambda g: _ask_files(_pair(g.hea, g.dat[: len(g.dat) // 2 // 24 * 24])), (422,), "truncated"),
    Case("lead_renamed_missing_v6", lambda g: _ask_files(_pair(_header_with(g.hea, " V6", " X6"), g.dat)),
         (422,), "V6"),
    Case("six_lead_record", lambda g: _ask_files(_pair(*_wfdb(_ecg(n_leads=6), names=PTBXL_NAMES[:6]))),
         (422,), "missing lead"),
    Case("header_only", lambda g: _ask_files(_one("rec.hea", g.hea)), (422,), "rec.dat"),
    Case("dat_only", lambda g: _ask_files(_one("rec.dat", g.dat)), (400,), "header"),
    Case("garbage_header", lambda g: _ask_files(_pair(b"this is not a header\x00\xff", g.dat)), (422,), "rec"),
    Case("empty_header", lambda g: _ask_files(_pair(b"", g.dat)), (422,), "rec"),
    Case("header_names_other_dat", lambda g: _ask_files(_pair(g.hea, g.dat, dat_name="other.dat")),
         (422,), "rec.dat"),
    Case("wfdb_one_second", lambda g: _ask_files(_pair(*_wfdb(_ecg(seconds=1)))), (422,), "at least"),
    Case("wfdb_flat_lead", lambda g: _ask_files(_pair(*_wfdb(_flat_ecg()))), (422,), "flat"),
    Case("wfdb_nan", lambda g: _ask_files(_pair(*_wfdb(_nan_ecg()))), (422,), "nan"),
    Case("wfdb_rate_10hz", lambda g: _ask_files(_pair(_header_with(g.hea, "rec 12 500 ", "rec 12 10 "), g.dat)),
         (422,), "sample rate"),
    Case("wfdb_rate_disagrees", lambda g: _ask_files(_pair(g.hea, g.dat), sample_rate="250"), (422,), "250"),
    Case("two_headers", lambda g: _ask_files([*_pair(g.hea, g.dat), ("files", ("b.hea", g.hea, "text/plain"))]),
         (400,), "headers"),
    Case("five_files", lambda g: _ask_files([("files", (f"f{i}.npy", b"x", "x")) for i in range(5)]),
         (400,), "files"),
    Case("duplicate_names", lambda g: _ask_files([("files", ("a.npy", b"x", "x")), ("files", ("a.npy", b"y", "x"))]),
         (400,), "twice"),
    # ---------------------------------------------------------------- .npy uploads
    Case("npy_no_rate", lambda g: _ask_files(_one("x.npy", g.npy())), (422,), "sample rate"),
    Case("npy_rate_not_number", lambda g: _ask_files(_one("x.npy", g.npy()), sample_rate="fast"), (422,), "fast"),
    Case("npy_rate_zero", lambda g: _ask_files(_one("x.npy", g.npy()), sample_rate="0"), (422,), "sample rate"),
    Case("npy_rate_nan", lambda g: _ask_files(_one("x.npy", g.npy()), sample_rate="nan"), (422,), "finite"),
    Case("npy_one_second", lambda g: _ask_files(_one("x.npy", _npy(_ecg(seconds=1))), sample_rate="500"),
         (422,), "at least"),
    Case("npy_nan", lambda g: _ask_files(_one("x.npy", _npy(_nan_ecg())), sample_rate="500"), (422,), "nan"),
    Case("npy_flat_line", lambda g: _ask_files(_one("x.npy", _npy(np.zeros((12, 5000)))), sample_rate="500"),
         (422,), "flat"),
    Case("npy_eight_leads", lambda g: _ask_files(_one("x.npy", _npy(_ecg()[:8])), sample_rate="500"),
         (422,), "shape"),
    Case("npy_3d", lambda g: _ask_files(_one("x.npy", _npy(np.ones((2, 12, 5000)))), sample_rate="500"),
         (422,), "shape"),
    Case("npy_pickled_objects", lambda g: _ask_files(_one("x.npy", _npy(np.array([{"a": 1}], dtype=object))),
                                                     sample_rate="500"), (422,), "x.npy"),
    Case("npy_strings", lambda g: _ask_files(_one("x.npy", _npy(np.full((12, 5000), "a"))), sample_rate="500"),
         (422,), "dtype"),
    Case("npy_truncated", lambda g: _ask_files(_one("x.npy", g.npy()[:1000]), sample_rate="500"), (422,), "x.npy"),
    Case("npy_is_text", lambda g: _ask_files(_one("x.npy", b"hello, I am not an array"), sample_rate="500"),
         (422,), "x.npy"),
    # ---------------------------------------------------------------- CSV / HDF5 / other files
    Case("csv_missing_leads", lambda g: _ask_files(_one("x.csv", b"I,II,III\n1,2,3\n4,5,6\n"), sample_rate="500"),
         (422,), "missing lead"),
    Case("csv_text_values",
         lambda g: _ask_files(_one("x.csv", (",".join(PTBXL_NAMES) + "\n" + ",".join(["a"] * 12) + "\n").encode()),
                              sample_rate="500"), (422,), "x.csv"),
    Case("csv_empty", lambda g: _ask_files(_one("x.csv", b""), sample_rate="500"), (422,), "x.csv"),
    Case("h5_random_bytes", lambda g: _ask_files(_one("x.h5", b"\x89HDF not really" * 10)), (422,), "x.h5"),
    Case("h5_without_tracings", lambda g: _ask_files(_one("x.h5", _empty_h5())), (422,), "tracings"),
    Case("text_file", lambda g: _ask_files(_one("notes.txt", b"patient felt fine")), (415,), "unknown"),
    Case("png_image", lambda g: _ask_files(_one("ecg.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 100)), (415,), "format"),
    Case("pdf_renamed_npy", lambda g: _ask_files(_one("scan.npy", b"%PDF-1.7\n" + b"\0" * 500), sample_rate="500"),
         (422,), "scan.npy"),
    Case("hidden_file_name", lambda g: _ask_files(_one(".npy", g.npy()), sample_rate="500"), (400,), "name"),
    Case("huge_upload_declared", lambda g: _ask_files(_one("big.npy", b"\0" * (MAX_UPLOAD + 1)), sample_rate="500"),
         (413,), "limit"),
    Case("huge_upload_streamed", lambda g: {
        "method": "POST", "url": "/v1/ask", "content": _chunks(MAX_UPLOAD + 200_000),
        "headers": {**AUTH, "Content-Type": "multipart/form-data; boundary=zzz"}}, (413,), "limit"),
    Case("no_ecg_at_all", lambda g: _ask_files([]), (422, 400), "file"),
    Case("files_and_example", lambda g: _ask_files(_pair(g.hea, g.dat), example="ex0"), (422,), "not both"),
    Case("unknown_example", lambda g: _ask_files([], example="ex999"), (404,), "ex999"),
    # ---------------------------------------------------------------- fields
    Case("missing_question", lambda g: {"method": "POST", "url": "/v1/ask", "headers": AUTH,
                                        "files": _pair(g.hea, g.dat)}, (422,), "question"),
    Case("blank_question", lambda g: _ask_files(_pair(g.hea, g.dat), question="   "), (422,), "question"),
    Case("question_too_long", lambda g: _ask_files(_pair(g.hea, g.dat), question="why? " * 400), (422,), "1000"),
    Case("bad_decode", lambda g: _ask_files(_pair(g.hea, g.dat), decode="beam"), (422,), "beam"),
    Case("files_field_is_text", lambda g: {"method": "POST", "url": "/v1/ask", "headers": AUTH,
                                           "data": {"question": GOOD_QUESTION, "files": "rec.hea"},
                                           "files": [("other", ("a", b"a", "x"))]}, (422,), "files"),
    # ---------------------------------------------------------------- JSON bodies
    Case("bad_json", lambda g: _ask_json(b'{"question": "Is it?", "signal": [[1, 2'), (400,), "json"),
    Case("json_not_object", lambda g: _ask_json([1, 2, 3]), (400,), "object"),
    Case("json_missing_question", lambda g: _ask_json({"signal": g.signal.tolist(), "sample_rate": 500}),
         (422,), "question"),
    Case("json_ragged_signal", lambda g: _ask_json({"question": GOOD_QUESTION, "signal": [[0.1] * 5000] * 11 + [[0.1]],
                                                   "sample_rate": 500}), (422,), "length"),
    Case("json_nan_signal", lambda g: _ask_json({"question": GOOD_QUESTION, "signal": _nan_ecg().tolist(),
                                                "sample_rate": 500}), (422,), "nan"),
    Case("json_three_leads", lambda g: _ask_json({"question": GOOD_QUESTION, "signal": _ecg()[:3].tolist(),
                                                 "sample_rate": 500}), (422,), "shape"),
    Case("json_no_rate", lambda g: _ask_json({"question": GOOD_QUESTION, "signal": g.signal.tolist()}),
         (422,), "sample rate"),
    Case("json_strings_in_signal", lambda g: _ask_json({"question": GOOD_QUESTION, "signal": [["a"] * 10] * 12,
                                                       "sample_rate": 500}), (422,), "signal"),
    Case("json_unknown_field", lambda g: _ask_json({"question": GOOD_QUESTION, "example": "ex0", "patient": "x"}),
         (422,), "patient"),
    Case("json_signal_and_example", lambda g: _ask_json({"question": GOOD_QUESTION, "example": "ex0",
                                                        "signal": [[1.0]], "sample_rate": 500}), (422,), "exactly one"),
    # ---------------------------------------------------------------- transport / auth
    Case("wrong_token", lambda g: {**_ask_files(_pair(g.hea, g.dat)), "headers": {"Authorization": "Bearer nope"}},
         (401,), "token"),
    Case("missing_token", lambda g: {**_ask_files(_pair(g.hea, g.dat)), "headers": {}}, (401,), "token"),
    Case("basic_auth_scheme", lambda g: {**_ask_files(_pair(g.hea, g.dat)),
                                         "headers": {"Authorization": "Basic dGVzdC10b2tlbi0xMjM="}}, (401,), "bearer"),
    Case("text_plain_body", lambda g: {"method": "POST", "url": "/v1/ask", "content": b"question=hi",
                                       "headers": {**AUTH, "Content-Type": "text/plain"}}, (415,), "content-type"),
    Case("no_content_type", lambda g: {"method": "POST", "url": "/v1/ask", "content": b"", "headers": AUTH},
         (415,), "content-type"),
    Case("broken_multipart", lambda g: {"method": "POST", "url": "/v1/ask",
                                        "content": b"--abc\r\nContent-Disposition: form-data; name=\"question\"\r\n\r\nhi",
                                        "headers": {**AUTH, "Content-Type": "multipart/form-data; boundary=abc"}},
         (400, 422), ""),
    Case("multipart_without_boundary", lambda g: {"method": "POST", "url": "/v1/ask", "content": b"xx",
                                                  "headers": {**AUTH, "Content-Type": "multipart/form-data"}},
         (400, 422), ""),
    Case("get_instead_of_post", lambda g: {"method": "GET", "url": "/v1/ask", "headers": AUTH}, (405,), "method"),
    Case("content_length_not_number", lambda g: {"method": "POST", "url": "/v1/ask", "content": b"{}",
                                                 "headers": {**AUTH, "Content-Type": "application/json",
                                                             "Content-Length": "lots"}}, (400,), "content-length"),
]


def _empty_h5() -> bytes:
    import h5py

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.h5"
        with h5py.File(path, "w") as f:
            f.create_dataset("signals", data=np.zeros((1, 10, 12)))
        return path.read_bytes()


def _send(client, spec: dict):
    spec = dict(spec)
    return client.request(spec.pop("method"), spec.pop("url"), **spec)


def check_refused(client, case: Case, good: GoodRecord) -> dict:
    response = _send(client, case.request(good))
    assert response.status_code in case.statuses, (case.name, response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/json"), (case.name, response.headers)
    body = response.json()
    assert set(body) == {"error", "detail"}, body
    assert body["error"] and body["detail"], body
    text = (body["error"] + " " + body["detail"]).lower()
    assert case.mentions.lower() in text, (case.name, body)
    assert "qheart-upload-" not in body["detail"], body  # names the client's file, not our temp dir
    return body


def check_good(client, good: GoodRecord, fake_model) -> None:
    response = client.post("/v1/ask", headers=AUTH, data={"question": GOOD_QUESTION}, files=good.files())
    assert response.status_code == 200, response.text[:300]
    expected = fake_model.ask(good.folder / "rec.hea", GOOD_QUESTION).to_dict()
    body = response.json()
    for key in ("answer", "question_type", "options", "scores", "reports", "notes"):
        assert body[key] == expected[key], key


def test_there_are_at_least_50_cases() -> None:
    assert len(CASES) >= 50
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_malformed_request_gets_4xx_json_then_good_request_is_answered(
    case: Case, client, good_record: GoodRecord, fake_model, upload_dir: Path
) -> None:
    check_refused(client, case, good_record)
    assert list(upload_dir.iterdir()) == [], "an upload was left on disk"
    check_good(client, good_record, fake_model)
    assert list(upload_dir.iterdir()) == []


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    pytest.skip("no /proc/self/status on this platform")


def test_memory_stays_bounded_across_repeated_malformed_requests(
    client, good_record: GoodRecord, fake_model, upload_dir: Path
) -> None:
    """Three rounds of all cases after a warm-up round: RSS grows by less than 40 MiB."""
    for case in CASES:  # warm-up: imports, caches, allocator pools
        check_refused(client, case, good_record)
    check_good(client, good_record, fake_model)
    before = _rss_mib()
    for _ in range(3):
        for case in CASES:
            check_refused(client, case, good_record)
        check_good(client, good_record, fake_model)
    growth = _rss_mib() - before
    print(f"RSS {before:.0f} MiB before, growth {growth:+.1f} MiB over {3 * len(CASES)} malformed requests")
    assert growth < 40, f"RSS grew by {growth:.1f} MiB"
    assert list(upload_dir.iterdir()) == []
    assert client.get("/healthz").json()["status"] == "ok"
