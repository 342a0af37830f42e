"""Property: whatever bytes an experiment file holds, the loader and ``tradechaos validate``
never raise a traceback; a file that does not load gives exit 2 and FILE:LINE messages."""

from __future__ import annotations

import contextlib
import io
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chaos.cli import main
from chaos.errors import InvalidExperiment
from chaos.experiment.loader import load, problems

GOOD = (Path(__file__).parents[1] / "data" / "tiny-latency.yaml").read_text()
GOOD_LINES = GOOD.splitlines(keepends=True)
VOCABULARY = [
    "name", "description", "incident", "seed", "duration", "stack", "load", "params",
    "steady_state", "safety", "variants", "method", "invariants", "probes", "abort_when",
    "probe", "max", "above", "for", "at", "after", "id", "action", "target", "mitigations",
    "expect", "violated", "latency", "restart", "oracle", "orcale", "sequencer-db", "health",
    "error_rate", "all", "none", "5s", "250ms", "-1s", "users", "standby", "mode", "normal",
    "variants", "band_bps", "no_duplicate_orders", "fencing",
]  # fmt: skip
SCALARS = st.one_of(
    st.sampled_from(VOCABULARY),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.text(max_size=12),
)
DOCUMENTS = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(VOCABULARY), SCALARS), inner, max_size=5),
    ),
    max_leaves=25,
)
YAML_NOISE = st.sampled_from(
    [":", "- ", "{", "}", "[", "]", "&a ", "*a", "!!python/object:os.system ", "\t", "\n",
     "  ", "'", '"', "#", "? ", "<<: *a", "%YAML 1.1\n", "---\n", "...\n", "\x00", "\ufeff"]
)  # fmt: skip


@st.composite
def mutated_good_file(draw: st.DrawFn) -> bytes:
    lines = list(GOOD_LINES)
    for _ in range(draw(st.integers(1, 4))):
        index = draw(st.integers(0, len(lines) - 1))
        kind = draw(st.sampled_from(["drop", "duplicate", "splice", "replace_value", "noise"]))
        if kind == "drop":
            del lines[index]
        elif kind == "duplicate":
            lines.insert(index, lines[index])
        elif kind == "splice":
            line = lines[index]
            cut = draw(st.integers(0, len(line)))
            lines[index] = line[:cut] + draw(st.text(max_size=8)) + line[cut:]
        elif kind == "replace_value" and ":" in lines[index]:
            key = lines[index].split(":", 1)[0]
            value = yaml.safe_dump(draw(DOCUMENTS), default_flow_style=True).strip()
            lines[index] = f"{key}: {value}\n"
        else:
            lines.insert(index, draw(YAML_NOISE))
        if not lines:
            break
    return "".join(lines).encode("utf-8", errors="surrogatepass")


FILES = st.one_of(
    mutated_good_file(),
    DOCUMENTS.map(lambda doc: yaml.safe_dump(doc, allow_unicode=True).encode()),
    st.binary(max_size=200),
    st.lists(st.one_of(YAML_NOISE, st.sampled_from(VOCABULARY)), max_size=30).map(
        lambda parts: " ".join(parts).encode()
    ),
)


@contextlib.contextmanager
def experiment_file(content: bytes) -> Iterator[str]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzzed.yaml"
        path.write_bytes(content)
        yield str(path)


def run_validate(path: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["validate", path])
    return code, out.getvalue() + err.getvalue()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(FILES)
def test_loader_and_validate_never_trace_and_always_name_file_and_line(content: bytes) -> None:
    with experiment_file(content) as path:
        found = problems(path)
        code, output = run_validate(path)
        if not found:
            load(path)  # loads without raising
            assert code == 0, output
            return
        assert code == 2, output
        assert "Traceback" not in output
        line_pattern = re.compile(rf"^{re.escape(path)}:\d+: ")
        for problem in found:
            assert isinstance(problem, InvalidExperiment)
            assert problem.line is not None and problem.line >= 1
            assert line_pattern.match(str(problem)), str(problem)
        for printed in output.strip().splitlines():
            assert line_pattern.match(printed), printed
        try:
            load(path)
        except InvalidExperiment as err:
            assert str(err) == str(found[0])
        else:
            raise AssertionError("load() accepted a file with problems")


def test_a_mutation_is_detected() -> None:
    """Guard against a property that cannot fail: a known-bad mutation gives exit 2."""
    with experiment_file(GOOD.replace("sequencer-db", "sequencer-bd").encode()) as path:
        code, output = run_validate(path)
    assert code == 2
    assert re.search(r"fuzzed\.yaml:22: method\[0\]\.target: unknown", output), output
