"""ECG-QA as released: read a split, keep the single-ECG questions, join them to a signal store.

Layout of a dataset folder (ECG-QA 1.0.2, one per source corpus, e.g. `ecgqa/ptbxl`):

    answers_for_each_template.csv          template_id, classes (a Python list literal)
    {paraphrased,template}/{train,valid,test}/*.json
                                           each a JSON list of question dicts, one file per
                                           10,000 samples, named by the first sample_id

Each question: template_id, question_id, sample_id, question_type, attribute_type, question,
answer [str], ecg_id [int] (PTB-XL ecg_id; MIMIC-IV-ECG study_id), attribute [str] | null.
Q-HEART uses the single-ECG types; the comparison types carry two ecg_ids and are skipped with a
count per type, so a summary shows exactly what was left out.
"""

from __future__ import annotations

import ast
import csv
import hashlib
import json
import logging
from collections import Counter
from collections.abc import Container, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qheart.data.options import (
    answer_set,
    answers_match,
    candidate_options,
    normalize_answer,
    options_cover,
)

__all__ = [
    "KEPT_TYPES",
    "SKIPPED_PREFIX",
    "SPLITS",
    "TEMPLATE_OPTIONS_FILE",
    "VARIANTS",
    "ECGQAFormatError",
    "QASample",
    "QASplit",
    "answer_set",
    "answers_match",
    "candidate_options",
    "describe_missing",
    "fixed_subset",
    "join_store",
    "load_split",
    "load_template_options",
    "normalize_answer",
    "options_cover",
    "read_qa_file",
    "split_files",
]

log = logging.getLogger(__name__)

KEPT_TYPES: tuple[str, ...] = ("single-verify", "single-choose", "single-query")
SKIPPED_PREFIX = "comparison"
"""ECG-QA's two-ECG types (comparison_{consecutive,irrelevant}-{verify,query}): counted, not kept."""
VARIANTS: tuple[str, ...] = ("paraphrased", "template")
SPLITS: tuple[str, ...] = ("train", "valid", "test")
TEMPLATE_OPTIONS_FILE = "answers_for_each_template.csv"
_FIELDS: tuple[str, ...] = (
    "template_id", "question_id", "sample_id", "question_type", "attribute_type",
    "question", "answer", "ecg_id", "attribute",
)  # fmt: skip


class ECGQAFormatError(ValueError):
    """An ECG-QA file that does not match the published format. Message: "<file>: <problem>"."""

    def __init__(self, source: str | Path, problem: str) -> None:
        self.source = str(source)
        self.problem = problem
        super().__init__(f"{self.source}: {problem}")


@dataclass(frozen=True, slots=True)
class QASample:
    """One single-ECG question. `answer` is a set written as a tuple: compare with `answer_set`."""

    sample_id: int
    question_id: int
    template_id: int
    question_type: str
    attribute_type: str
    question: str
    answer: tuple[str, ...]
    ecg_id: int
    attribute: tuple[str, ...] | None


@dataclass(frozen=True)
class QASplit:
    """The kept questions of one split, what was skipped (per question type), and the files read."""

    samples: list[QASample]
    skipped: dict[str, int]
    files: tuple[Path, ...] = field(default=())

    def __len__(self) -> int:
        return len(self.samples)

    def counts(self) -> dict[str, int]:
        """Kept questions per question type, in `KEPT_TYPES` order (types with none left out)."""
        found = Counter(s.question_type for s in self.samples)
        return {t: found[t] for t in KEPT_TYPES if found[t]}


# ---------------------------------------------------------------------------------------------
# reading


def split_files(directory: Path) -> list[Path]:
    """The split's JSON files in sample order.

    Files are named by their first sample_id without padding ("90000.json" precedes
    "100000.json"), so plain string sorting would misorder them: numeric names sort by number.
    """

    def key(path: Path) -> tuple[int, int, str]:
        return (0, int(path.stem), path.name) if path.stem.isdigit() else (1, 0, path.name)

    return sorted(directory.glob("*.json"), key=key)


def _int_field(record: dict[str, Any], name: str, where: str, path: Path) -> int:
    value = record[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ECGQAFormatError(path, f"{where}: {name} must be an integer, got {value!r}")
    return value


def _str_list(value: Any, name: str, where: str, path: Path) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ECGQAFormatError(path, f"{where}: {name} must be a list of strings, got {value!r}")
    return tuple(value)


def _parse_record(record: Any, index: int, path: Path) -> QASample | str:
    """A kept question as a QASample, or the question type of a comparison question (skipped).

    Any other question type is an error: a typo must not silently drop questions.
    """
    where = f"entry {index}"
    if not isinstance(record, dict):
        raise ECGQAFormatError(path, f"{where}: expected an object, got {type(record).__name__}")
    missing = [name for name in _FIELDS if name not in record]
    if missing:
        raise ECGQAFormatError(path, f"{where}: missing field(s) {', '.join(missing)}")
    where = f"entry {index} (sample_id {record['sample_id']!r})"
    question_type = record["question_type"]
    if not isinstance(question_type, str):
        raise ECGQAFormatError(path, f"{where}: question_type must be a string")
    ecg_ids = record["ecg_id"]
    if (
        not isinstance(ecg_ids, list)
        or not ecg_ids
        or not all(isinstance(e, int) and not isinstance(e, bool) for e in ecg_ids)
    ):
        raise ECGQAFormatError(path, f"{where}: ecg_id must be a non-empty list of integers")
    if question_type.startswith(SKIPPED_PREFIX):
        return question_type
    if question_type not in KEPT_TYPES:
        raise ECGQAFormatError(
            path, f"{where}: unknown question_type {question_type!r} (expected one of "
            f"{', '.join(KEPT_TYPES)} or a {SKIPPED_PREFIX}* type)"
        )
    if len(ecg_ids) != 1:
        raise ECGQAFormatError(
            path, f"{where}: a {question_type} question must have one ecg_id, got {ecg_ids}"
        )
    for name in ("question", "attribute_type"):
        if not isinstance(record[name], str):
            raise ECGQAFormatError(path, f"{where}: {name} must be a string")
    attribute = record["attribute"]
    return QASample(
        sample_id=_int_field(record, "sample_id", where, path),
        question_id=_int_field(record, "question_id", where, path),
        template_id=_int_field(record, "template_id", where, path),
        question_type=question_type,
        attribute_type=record["attribute_type"],
        question=record["question"],
        answer=_str_list(record["answer"], "answer", where, path),
        ecg_id=ecg_ids[0],
        attribute=None if attribute is None else _str_list(attribute, "attribute", where, path),
    )


def read_qa_file(path: Path) -> tuple[list[QASample], Counter[str]]:
    """One ECG-QA JSON file: its kept questions and the count of skipped ones per type."""
    try:
        with path.open(encoding="utf-8") as f:
            records = json.load(f)
    except json.JSONDecodeError as e:
        raise ECGQAFormatError(path, f"invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from e
    except (OSError, UnicodeDecodeError) as e:
        raise ECGQAFormatError(path, f"unreadable: {e}") from e
    if not isinstance(records, list):
        raise ECGQAFormatError(path, f"expected a JSON list of questions, got {type(records).__name__}")
    samples: list[QASample] = []
    skipped: Counter[str] = Counter()
    for index, record in enumerate(records):
        parsed = _parse_record(record, index, path)
        if isinstance(parsed, QASample):
            samples.append(parsed)
        else:
            skipped[parsed] += 1
    return samples, skipped


class UnknownChoiceError(ValueError):
    """A split or variant name ECG-QA does not have (a ValueError, so callers that caught one
    still do; a qheart error, so the CLI prints it as one line)."""


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise UnknownChoiceError(f"unknown {name} {value!r}; expected one of {', '.join(allowed)}")


def load_split(dataset_dir: str | Path, variant: str, split: str) -> QASplit:
    """Every `*.json` of `<dataset_dir>/<variant>/<split>/`, in sample order.

    Keeps single-verify/choose/query questions; every other question type is counted in
    `.skipped`. A malformed file raises `ECGQAFormatError` naming it.
    """
    _check_choice("variant", variant, VARIANTS)
    _check_choice("split", split, SPLITS)
    directory = Path(dataset_dir) / variant / split
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory}: no such ECG-QA split folder")
    files = split_files(directory)
    if not files:
        raise FileNotFoundError(f"{directory}: no *.json files in this ECG-QA split folder")
    samples: list[QASample] = []
    skipped: Counter[str] = Counter()
    for path in files:
        file_samples, file_skipped = read_qa_file(path)
        samples.extend(file_samples)
        skipped.update(file_skipped)
    return QASplit(samples=samples, skipped=dict(sorted(skipped.items())), files=tuple(files))


def load_template_options(dataset_dir: str | Path) -> dict[int, list[str]]:
    """template_id → its answer options, from `answers_for_each_template.csv`.

    `classes` is a Python list literal in the release; it is parsed with `ast.literal_eval`
    (literals only, never code).
    """
    path = Path(dataset_dir) / TEMPLATE_OPTIONS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (ECG-QA's per-template answer table)")
    options: dict[int, list[str]] = {}
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or not {"template_id", "classes"} <= set(reader.fieldnames):
            raise ECGQAFormatError(path, f"expected columns template_id, classes; got {reader.fieldnames}")
        for row in reader:
            where = f"line {reader.line_num}"
            try:
                template_id = int(row["template_id"])
                classes = ast.literal_eval(row["classes"])
            except (ValueError, SyntaxError, TypeError) as e:
                raise ECGQAFormatError(path, f"{where}: cannot parse ({e})") from e
            if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
                raise ECGQAFormatError(path, f"{where}: classes must be a list of strings")
            if template_id in options:
                raise ECGQAFormatError(path, f"{where}: template_id {template_id} appears twice")
            options[template_id] = classes
    return options


# ---------------------------------------------------------------------------------------------
# subsets and the join to a signal store


def _subset_rank(sample: QASample, seed: int) -> tuple[int, int]:
    # A keyed hash of the sample_id: independent of file order, of Python's per-process hash
    # seed, and of the variant (the paraphrased and template files share sample_ids).
    digest = hashlib.blake2b(f"{seed}:{sample.sample_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big"), sample.sample_id


def fixed_subset(samples: Sequence[QASample], fraction: float = 0.1, seed: int = 0) -> list[QASample]:
    """A fixed `fraction` of the samples (the paper's "10% test"), in sample_id order.

    Exactly round(fraction·n) samples: those with the smallest keyed hash of their sample_id.
    The same samples come back whatever the input order.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    n = round(fraction * len(samples))
    chosen = sorted(samples, key=lambda s: _subset_rank(s, seed))[:n]
    return sorted(chosen, key=lambda s: (s.sample_id, s.question_type, s.question))


def join_store(
    samples: Sequence[QASample], store: Container[int]
) -> tuple[list[QASample], list[QASample]]:
    """Split samples into (kept, missing): whether their ecg_id is in the signal store.

    `store` is a `SignalStore` or anything with `__contains__`. A warning names the count of
    questions and ECGs missing, so a partial store never shrinks a split silently.
    """
    present: dict[int, bool] = {}
    kept: list[QASample] = []
    missing: list[QASample] = []
    for sample in samples:
        hit = present.get(sample.ecg_id)
        if hit is None:
            hit = present[sample.ecg_id] = sample.ecg_id in store
        (kept if hit else missing).append(sample)
    if missing:
        n_ecgs = sum(not hit for hit in present.values())
        log.warning(
            "%d of %d questions (%d distinct ECGs) have no ECG in the store",
            len(missing), len(samples), n_ecgs,
        )  # fmt: skip
    return kept, missing


def describe_missing(missing: Sequence[QASample], limit: int = 5) -> str:
    """A short human line listing the first missing ecg_ids."""
    ids = sorted({s.ecg_id for s in missing})
    head = ", ".join(str(i) for i in ids[:limit])
    more = f", … (+{len(ids) - limit})" if len(ids) > limit else ""
    return f"{len(missing)} questions, {len(ids)} ECGs missing (ecg_id {head}{more})"

