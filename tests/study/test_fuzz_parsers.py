"""Fuzzing the two file parsers where tests/test_studyfile.py and test_protocols.py stop.

Those fuzz `parse_study` / `parse_protocol` on text and TOML structures. Here the fuzz goes through
what `neuron-pilot new` really runs: raw *bytes* on disk (invalid UTF-8, BOMs, NULs) into
`load_study_file` / `load_protocol`, TOML-ish line soup into the study parser, and mutated study
and protocol documents through `lab.study.create.validate` (path resolution, protocol lookup by path,
[criteria] against the protocol's thresholds, method and task registries, input preflight). Each
must end in a valid result or one-line BadInput (ProtocolError for the protocol loader) — never any
other exception. Valid results must also survive a round trip through their own serialised form.
"""

from __future__ import annotations

import copy
import tempfile
import tomllib
from pathlib import Path
from typing import Any, Iterator

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lab.core.errors import BadInput
from lab.study.create import validate
from lab.study.studyfile import StudyFile, load_study_file, parse_study
from protocols import SHIPPED, Protocol, ProtocolError, load_protocol, parse_protocol

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SHIPPED_TEXT = (SHIPPED / "lsn-staged.toml").read_text(encoding="utf-8")

STUDY_KEYS = ["study", "model", "languages", "corpus", "identify", "intervention", "evaluate", "criteria", "generate",
              "name", "id", "all", "targets", "path", "tasks", "method", "kind", "value", "protocol", "seed",
              "tokens_per_language", "block_size", "heldout", "data_dir", "gguf_file", "trust_remote_code",
              "min_gain_points", "high_resource", "limit"]
PROTOCOL_KEYS = ["protocol", "stage", "name", "title", "needs", "gate", "rule", "params", "runs", "on_no_go",
                 "version", "inputs", "metrics", "artifacts", "description", "reference"]
SCALARS = st.one_of(st.text(max_size=10), st.integers(-2**63, 2**63 - 1), st.booleans(),
                    st.floats(allow_nan=True), st.sampled_from(
                        ["en", "sw", "hi", "lape", "random", "act_prob_90p", "zero", "p90", "finetune", "demo_xnli",
                         "demo_xnli_sw", "xnli", ".", "..", "/", "examples/corpora", "examples/models/tiny-polyglot",
                         "a/b", "x.gguf", "lsn-staged", "criteria", "stop", "continue", "hf:wikipedia"]))


def values(keys: list[str]) -> Any:
    key = st.one_of(st.sampled_from(keys), st.text(max_size=8))
    return st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                         st.dictionaries(key, inner, max_size=4)), max_leaves=12)


STUDY_VALUES = values(STUDY_KEYS)
PROTOCOL_VALUES = values(PROTOCOL_KEYS)


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for k, v in items:
        yield from _paths(v, prefix + (k,))


def mutate(base: dict[str, Any], data: st.DataObject, vals: Any, keys: list[str]) -> dict[str, Any]:
    """1–3 edits (replace a value, delete a key or item, add a key) anywhere in the document."""
    doc = copy.deepcopy(base)
    for _ in range(data.draw(st.integers(1, 3))):
        paths = [p for p in _paths(doc) if p]
        if not paths:
            break
        path = data.draw(st.sampled_from(paths))
        parent: Any = doc
        for k in path[:-1]:
            parent = parent[k]
        op = data.draw(st.sampled_from(["replace", "delete", "add"]))
        if op == "replace":
            parent[path[-1]] = data.draw(vals)
        elif op == "delete":
            del parent[path[-1]]
        elif isinstance(parent[path[-1]], dict):
            parent[path[-1]][data.draw(st.one_of(st.sampled_from(keys), st.text(max_size=8)))] = data.draw(vals)
    return doc


def one_line(exc: Exception) -> None:
    assert str(exc) and "\n" not in str(exc), repr(str(exc))


# ---- a scratch folder with a valid study: corpus files exist, the model folder passes preflight ----

@pytest.fixture(scope="module")
def scratch(tiny_llama_dir: Path, tiny_corpus_dir: Path) -> Iterator[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        valid = {"study": {"name": "fuzz", "seed": 1},
                 "model": {"id": str(tiny_llama_dir), "device": "cpu"},
                 "languages": {"all": ["en", "fr", "de", "sw"], "targets": ["sw"]},
                 "corpus": {"path": str(tiny_corpus_dir), "tokens_per_language": 1000},
                 "identify": {"method": "lape"},
                 "intervention": {"kind": "test_time", "value": "p90"},
                 "evaluate": {"tasks": ["demo_xnli"]},
                 "criteria": {"min_gain_points": 2.0}}
        yield {"root": root, "valid": valid, "home": root / "home"}


def _validate(study_path: Path, home: Path) -> None:
    try:
        parsed, cfg, _, protocol = validate(study_path, home)
    except BadInput as exc:
        one_line(exc)
    else:
        assert isinstance(parsed, StudyFile) and isinstance(protocol, Protocol)
        assert cfg["resolved"]["model_source"] in ("local", "gguf", "hub")


def test_the_unmutated_documents_validate(scratch: dict[str, Any]) -> None:
    """The fuzz seeds are valid, so mutations start from a document that reaches every check."""
    path = scratch["root"] / "seed.toml"
    path.write_text(tomli_w.dumps(scratch["valid"]), encoding="utf-8")
    parsed, cfg, _, protocol = validate(path, scratch["home"])
    assert parsed.study.name == "fuzz" and protocol.name == "lsn-staged" and cfg["criteria"] == {"min_gain_points": 2.0}
    proto = scratch["root"] / "seed-protocol.toml"
    proto.write_text(SHIPPED_TEXT, encoding="utf-8")
    doc = {**scratch["valid"], "study": {"name": "fuzz", "protocol": str(proto)}}
    path.write_text(tomli_w.dumps(doc), encoding="utf-8")
    assert validate(path, scratch["home"])[3].stage_names == load_protocol("lsn-staged").stage_names


# ---- bytes on disk ------------------------------------------------------------------------------------

BYTES = st.one_of(st.binary(max_size=300),
                  st.builds(lambda pre, body: pre + body.encode("utf-8", "surrogatepass"),
                            st.sampled_from([b"", b"\xef\xbb\xbf", b"\xff\xfe", b"\x00", b"[study]\n"]),
                            st.text(max_size=200)),
                  st.builds(lambda cut, junk: SHIPPED_TEXT.encode()[:cut] + junk,
                            st.integers(0, len(SHIPPED_TEXT)), st.binary(max_size=20)))


@FUZZ
@given(BYTES)
def test_fuzz_study_file_bytes(scratch: dict[str, Any], data: bytes) -> None:
    path = scratch["root"] / "bytes.toml"
    path.write_bytes(data)
    try:
        parsed, cfg, text = load_study_file(path)
    except BadInput as exc:
        one_line(exc)
    else:
        assert isinstance(parsed, StudyFile) and text.splitlines() == data.decode("utf-8").splitlines()


@FUZZ
@given(BYTES)
def test_fuzz_protocol_file_bytes(scratch: dict[str, Any], data: bytes) -> None:
    path = scratch["root"] / "bytes-protocol.toml"
    path.write_bytes(data)
    try:
        result = load_protocol(str(path))
    except ProtocolError as exc:
        one_line(exc)
    else:
        assert isinstance(result, Protocol)


# ---- TOML-ish line soup into the study parser -------------------------------------------------------

def _study_lines(valid: dict[str, Any]) -> list[str]:
    return tomli_w.dumps(valid).splitlines()


TOMLISH_ALPHABET = "[]{}=\"',.\n #abc123_-"


@FUZZ
@given(st.data())
def test_fuzz_study_tomlish_lines(scratch: dict[str, Any], data: st.DataObject) -> None:
    lines = data.draw(st.lists(st.one_of(st.sampled_from(_study_lines(scratch["valid"])),
                                         st.text(alphabet=TOMLISH_ALPHABET, max_size=20)), max_size=30))
    try:
        result = parse_study("\n".join(lines), source="fuzz.toml")
    except BadInput as exc:
        one_line(exc)
    else:
        assert StudyFile.model_validate(result.normalised()) == result  # a valid result round-trips


# ---- mutated documents through everything `new` checks -------------------------------------------------

@FUZZ
@given(st.data())
def test_fuzz_mutated_study_through_validate(scratch: dict[str, Any], data: st.DataObject) -> None:
    doc = mutate(scratch["valid"], data, STUDY_VALUES, STUDY_KEYS)
    path = scratch["root"] / "mutated.toml"
    path.write_text(tomli_w.dumps(doc), encoding="utf-8")
    _validate(path, scratch["home"])


@FUZZ
@given(st.data())
def test_fuzz_mutated_protocol_through_validate(scratch: dict[str, Any], data: st.DataObject) -> None:
    """A study naming a protocol file by path: the protocol's errors and its thresholds (checked
    against the study's [criteria]) all surface as BadInput."""
    proto_doc = mutate(tomllib.loads(SHIPPED_TEXT), data, PROTOCOL_VALUES, PROTOCOL_KEYS)
    proto = scratch["root"] / "mutated-protocol.toml"
    proto.write_text(tomli_w.dumps(proto_doc), encoding="utf-8")
    try:
        parsed = parse_protocol(proto.read_text(encoding="utf-8"), source=proto.name)
    except ProtocolError as exc:
        one_line(exc)
    else:  # a valid protocol round-trips through TOML
        again = parse_protocol(tomli_w.dumps(parsed.model_dump(exclude_none=True)), source=proto.name)
        assert again == parsed
    study = {**scratch["valid"], "study": {"name": "fuzz", "protocol": str(proto)}}
    path = scratch["root"] / "with-protocol.toml"
    path.write_text(tomli_w.dumps(study), encoding="utf-8")
    _validate(path, scratch["home"])


# ---- every numeric key against NaN, ±inf, booleans, quoted numbers, huge and negative values (issue #20) ----

def _numeric_study_keys() -> list[tuple[str, str]]:
    """(section, key) of every int or float key of the study file, read from its schema."""
    out = []
    for section, field in StudyFile.model_fields.items():
        for key, sub in getattr(field.annotation, "model_fields", {}).items():
            if any(t in (int, float) for t in (sub.annotation, *getattr(sub.annotation, "__args__", ()))):
                out.append((section, key))
    return out


NUMERIC_STUDY_KEYS = _numeric_study_keys()
NUMERIC_THRESHOLDS = sorted(k for k, v in load_protocol("lsn-staged").gate_params().items()
                            if isinstance(v, (int, float)) and not isinstance(v, bool))
ALWAYS_WRONG = st.one_of(st.sampled_from([float("nan"), float("inf"), float("-inf"), True, False]),
                         st.floats(allow_nan=False).map(str), st.integers(-10**6, 10**6).map(str))
EXTREME = st.one_of(st.integers(2**40, 2**63 - 1), st.integers(-2**63, -1), st.floats(1e12, 1e308),
                    st.floats(-1e308, -1e-9))
NUMERIC_FUZZ = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                               HealthCheck.function_scoped_fixture])


def test_the_numeric_keys_are_all_found() -> None:
    """The fuzz below reaches every numeric key the schema has (a new key is fuzzed without edits here)."""
    assert len(NUMERIC_STUDY_KEYS) >= 20 and ("corpus", "tokens_per_language") in NUMERIC_STUDY_KEYS
    assert ("identify", "top_rate") in NUMERIC_STUDY_KEYS and ("generate", "temperature") in NUMERIC_STUDY_KEYS
    assert {"min_gain_points", "min_neurons_per_target"} <= set(NUMERIC_THRESHOLDS)


def _write(scratch: dict[str, Any], doc: dict[str, Any], name: str = "numeric.toml") -> Path:
    path = scratch["root"] / name
    path.write_text(tomli_w.dumps(doc), encoding="utf-8")
    return path


@pytest.mark.parametrize("section,key", NUMERIC_STUDY_KEYS, ids=[f"{s}.{k}" for s, k in NUMERIC_STUDY_KEYS])
@NUMERIC_FUZZ
@given(bad=ALWAYS_WRONG, extreme=EXTREME)
def test_fuzz_every_numeric_study_key(scratch: dict[str, Any], section: str, key: str, bad: Any, extreme: Any) -> None:
    """NaN, ±inf, a boolean or a quoted number is refused naming the key; a huge or negative value is
    refused naming the key or accepted as a finite number within the key's bounds."""
    doc = copy.deepcopy(scratch["valid"])
    doc.setdefault(section, {})[key] = bad
    with pytest.raises(BadInput) as exc:
        validate(_write(scratch, doc), scratch["home"])
    one_line(exc.value)
    assert f"[{section}] {key}" in str(exc.value)
    doc[section][key] = extreme
    try:
        parsed, cfg, _, _ = validate(_write(scratch, doc), scratch["home"])
    except BadInput as err:
        one_line(err)
        assert f"[{section}] {key}" in str(err) or "block_size" in str(err)  # a long block is also the model's limit
    else:
        stored = cfg[section][key]
        assert stored == extreme and not isinstance(stored, bool) and abs(stored) < float("inf")


@pytest.mark.parametrize("key", NUMERIC_THRESHOLDS)
@NUMERIC_FUZZ
@given(bad=ALWAYS_WRONG)
def test_fuzz_every_criteria_threshold(scratch: dict[str, Any], key: str, bad: Any) -> None:
    doc = {**copy.deepcopy(scratch["valid"]), "criteria": {key: bad}}
    with pytest.raises(BadInput) as exc:
        validate(_write(scratch, doc), scratch["home"])
    one_line(exc.value)
    assert f"[criteria] {key}" in str(exc.value)


@pytest.mark.parametrize("key", NUMERIC_THRESHOLDS)
@NUMERIC_FUZZ
@given(bad=ALWAYS_WRONG)
def test_fuzz_every_protocol_threshold(scratch: dict[str, Any], key: str, bad: Any) -> None:
    """The same values as a protocol file's gate thresholds: refused naming the threshold."""
    proto_doc = tomllib.loads(SHIPPED_TEXT)
    for stage in proto_doc["stage"]:
        params = (stage.get("gate") or {}).get("params") or {}
        if key in params:
            params[key] = bad
    proto = _write(scratch, proto_doc, "numeric-protocol.toml")
    with pytest.raises(ProtocolError) as exc:
        parse_protocol(proto.read_text(encoding="utf-8"), source=proto.name)
    one_line(exc.value)
    assert key in str(exc.value)
