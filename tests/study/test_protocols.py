"""Protocol files: the shipped lsn-staged loads, every validation error is a one-line ProtocolError,
users add protocols in <home>/protocols/ or by path, and fuzzed input never raises anything else."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any, Iterator

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols import SHIPPED, Protocol, ProtocolError, find_protocol, list_protocols, load_protocol, parse_protocol

SHIPPED_TEXT = (SHIPPED / "lsn-staged.toml").read_text(encoding="utf-8")

MINIMAL = """
[protocol]
name = "mine"
title = "My protocol"

[[stage]]
name = "criteria"
title = "Define criteria"
gate = { rule = "criteria" }

[[stage]]
name = "model"
title = "Load model"
needs = ["criteria"]
"""


def test_lsn_staged_loads() -> None:
    p = load_protocol("lsn-staged")
    assert p.name == "lsn-staged" and p.protocol.version == 1
    assert p.stage_names == ["criteria", "model", "identify", "reproduce", "intervene", "generate", "evaluate",
                            "decide"]
    seen: set[str] = set()
    for st_ in p.stage:
        assert st_.title and set(st_.needs) <= seen
        seen.add(st_.name)
    assert p.get("identify").artifacts == ["activation_stats.safetensors", "neurons.json"]
    assert p.get("evaluate").gate is not None and p.get("evaluate").gate.rule == "evaluate"
    assert p.get("decide").gate is not None and p.get("decide").gate.rule == "final"
    params = p.gate_params()
    assert params["min_gain_points"] == 1.0 and params["min_median_stability"] == 0.3
    assert "lsn-staged" in list_protocols()
    with pytest.raises(ProtocolError, match="has no stage 'nosuch'"):
        p.get("nosuch")


def _error(text: str) -> str:
    with pytest.raises(ProtocolError) as exc:
        parse_protocol(text, source="t.toml")
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith("protocol t.toml")
    return msg


@pytest.mark.parametrize("text, expected", [
    (MINIMAL.replace('title = "My protocol"', 'title = "My protocol"\ncolour = "red"'), "unknown key protocol.colour"),
    (MINIMAL.replace('needs = ["criteria"]', 'needs = ["criteria"]\nneeds_gpu = true'), "unknown key stage.1.needs_gpu"),
    (MINIMAL.replace('rule = "criteria"', 'rule = "criteria", when = "now"'), "unknown key stage.0.gate.when"),
    (MINIMAL.replace('name = "model"', 'name = "criteria"'), "stage 'criteria' is declared twice"),
    (MINIMAL.replace('needs = ["criteria"]', 'needs = ["evaluate"]'), "needs 'evaluate', which is not an earlier stage"),
    (MINIMAL.replace('title = "My protocol"\n', ""), "missing protocol.title"),
    (MINIMAL.replace('title = "Load model"\n', ""), "missing stage.1.title"),
    (MINIMAL + "\n[[stage]\n", "is not valid TOML"),
    ('[protocol]\nname = "x"\ntitle = "y"\nstage = []\n', "stage"),
    (MINIMAL.replace('name = "model"', 'name = "Load Model!"'), "must be lower-case"),
    (MINIMAL.replace('rule = "criteria"', 'rule = "criteria", on_no_go = "panic"'), "on_no_go"),
    ("", "missing protocol"),
])
def test_validation_errors_are_one_line(text: str, expected: str) -> None:
    assert expected in _error(text)


def test_a_stage_that_needs_a_later_stage_is_refused() -> None:
    text = MINIMAL.replace('[[stage]]\nname = "criteria"', '[[stage]]\nname = "criteria"\nneeds = ["model"]')
    assert "stage 'criteria' needs 'model', which is not an earlier stage" in _error(text)


def test_a_key_with_a_newline_still_gives_a_one_line_message() -> None:
    msg = _error(MINIMAL.replace('title = "My protocol"', 'title = "My protocol"\n"two\\nlines" = 1'))
    assert "unknown key protocol.two lines" in msg


def test_minimal_protocol_parses_and_defaults() -> None:
    p = parse_protocol(MINIMAL)
    assert p.stage_names == ["criteria", "model"]
    assert p.get("model").implementation == "model" and p.get("criteria").gate.on_no_go == "stop"  # type: ignore[union-attr]


def test_user_protocol_by_name_from_home_and_by_path(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "protocols").mkdir(parents=True)
    (home / "protocols" / "mine.toml").write_text(MINIMAL, encoding="utf-8")
    assert load_protocol("mine", home).name == "mine"
    assert "mine" in list_protocols(home) and "lsn-staged" in list_protocols(home)
    # a user file named like a shipped one is found first
    (home / "protocols" / "lsn-staged.toml").write_text(MINIMAL.replace('"mine"', '"lsn-staged"'), encoding="utf-8")
    assert load_protocol("lsn-staged", home).stage_names == ["criteria", "model"]
    assert len(load_protocol("lsn-staged").stage_names) == 8  # without that home: the shipped one
    # by path, anywhere
    other = tmp_path / "elsewhere" / "p.toml"
    other.parent.mkdir()
    other.write_text(MINIMAL.replace('"mine"', '"by-path"'), encoding="utf-8")
    assert load_protocol(str(other)).name == "by-path"
    assert find_protocol(str(other)) == other


def test_protocol_lookup_errors(tmp_path: Path) -> None:
    with pytest.raises(ProtocolError, match=r"unknown protocol 'nope' \(known: .*lsn-staged"):
        load_protocol("nope", tmp_path)
    with pytest.raises(ProtocolError, match="does not exist"):
        load_protocol(str(tmp_path / "missing.toml"))
    bad = tmp_path / "latin1.toml"
    bad.write_bytes("[protocol]\nname = \"caf\xe9\"\n".encode("latin-1"))
    with pytest.raises(ProtocolError, match="not UTF-8"):
        load_protocol(str(bad))
    broken = tmp_path / "broken.toml"
    broken.write_text("[protocol\n", encoding="utf-8")
    with pytest.raises(ProtocolError, match="broken.toml is not valid TOML"):
        load_protocol(str(broken))


# ---- fuzz -------------------------------------------------------------------------------------

def _check(text: str) -> None:
    """parse_protocol either returns a Protocol or raises a one-line ProtocolError — nothing else."""
    try:
        result = parse_protocol(text, source="fuzz.toml")
    except ProtocolError as exc:
        assert "\n" not in str(exc) and str(exc)
    else:
        assert isinstance(result, Protocol)


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KEYS = ["protocol", "stage", "name", "title", "needs", "gate", "rule", "params", "runs", "on_no_go", "version",
        "inputs", "metrics", "artifacts", "description", "reference"]
SCALARS = st.one_of(st.text(max_size=12), st.integers(-2**63, 2**63 - 1), st.booleans(),
                    st.floats(allow_nan=True), st.sampled_from(["criteria", "model", "stop", "continue", "lsn-staged"]))
KEY = st.one_of(st.sampled_from(KEYS), st.text(max_size=8))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(KEY, inner, max_size=4)), max_leaves=12)
TOMLISH = st.lists(st.one_of(st.sampled_from(SHIPPED_TEXT.splitlines()), st.sampled_from(MINIMAL.splitlines()),
                             st.text(alphabet="[]{}=\"',.\n #abc123_-", max_size=20)), max_size=30)


@settings(FUZZ, max_examples=100)
@given(st.text(max_size=300))
def test_fuzz_random_text(text: str) -> None:
    _check(text)


@FUZZ
@given(TOMLISH)
def test_fuzz_tomlish_lines(lines: list[str]) -> None:
    _check("\n".join(lines))


@FUZZ
@given(st.dictionaries(KEY, VALUES, max_size=5))
def test_fuzz_random_structures(doc: dict[str, Any]) -> None:
    _check(tomli_w.dumps(doc))


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for k, v in items:
        yield from _paths(v, prefix + (k,))


def mutate(base: dict[str, Any], data: st.DataObject) -> dict[str, Any]:
    """1–3 random edits (replace, delete, add a key) anywhere in a valid document."""
    doc = copy.deepcopy(base)
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from([p for p in _paths(doc) if p]))
        parent = doc
        for k in path[:-1]:
            parent = parent[k]
        op = data.draw(st.sampled_from(["replace", "delete", "add"]))
        if op == "replace":
            parent[path[-1]] = data.draw(VALUES)
        elif op == "delete":
            del parent[path[-1]]
        elif isinstance(parent[path[-1]], dict):
            parent[path[-1]][data.draw(KEY)] = data.draw(VALUES)
        if not doc:
            break
    return doc


@FUZZ
@given(st.data())
def test_fuzz_mutated_shipped_protocol(data: st.DataObject) -> None:
    _check(tomli_w.dumps(mutate(tomllib.loads(SHIPPED_TEXT), data)))
