"""The pieces behind `bench --backend http` on a user's endpoint: request templates and
response paths, status lines without a terminal, and the bounded duration."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from benchwatch.bench.http_mapping import JsonMapping, MappingError, load_adapter, resolve
from benchwatch.bench.progress import status_lines
from benchwatch.cli import main
from benchwatch.errors import UsageError


def test_resolve_paths() -> None:
    doc = {"result": {"scores": [[0.1, 0.9]]}, "preds": [{"p": [1, 0]}, {"p": [0, 1]}]}
    assert resolve(doc, "result.scores") == [[0.1, 0.9]]
    assert resolve(doc, "$.result.scores.0") == [0.1, 0.9]
    assert resolve(doc, "preds.*.p") == [[1, 0], [0, 1]]
    with pytest.raises(MappingError, match="result has no 'probs'"):
        resolve(doc, "result.probs")
    with pytest.raises(MappingError, match="not a list"):
        resolve(doc, "result.*")


def test_templates_batch_and_per_row() -> None:
    batch = np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32)
    m = JsonMapping.parse('{"rows": "$inputs", "id": 7}', "probabilities", None)
    assert not m.per_row and m.bodies(batch) == [{"rows": [[1.0, 2.0], [3.0, 4.0]], "id": 7}]
    one = JsonMapping.parse('{"instances": [{"x": "$input"}]}', "p", None)
    assert one.per_row and one.bodies(batch)[1] == {"instances": [{"x": [3.0, 4.0]}]}
    got = one.scores_of([{"p": [0.2, 0.8]}, {"p": [0.6, 0.4]}], 2)
    np.testing.assert_allclose(got, [[0.2, 0.8], [0.6, 0.4]])
    labels = JsonMapping.parse(None, None, "label", ["cat", "dog"])
    np.testing.assert_array_equal(labels.scores_of([{"label": ["dog", "cat"]}], 2),
                                  [[0, 1], [1, 0]])
    np.testing.assert_array_equal(labels.scores_of([{"label": [1, 0]}], 2), [[0, 1], [1, 0]])
    with pytest.raises(MappingError, match="expected 3 rows"):
        m.scores_of([{"probabilities": [[0.5, 0.5]]}], 3)


@pytest.mark.parametrize("template,scores,labels,classes,said", [
    ("{not json", None, None, (), "not JSON"),
    ('{"rows": []}', None, None, (), "exactly one of"),
    ('{"a": "$inputs", "b": "$input"}', None, None, (), "exactly one of"),
    (None, "p", "l", ("a", "b"), "not both"),
    (None, None, "l", (), "names its classes"),
])
def test_bad_mappings_say_what_to_write(template: str | None, scores: str | None,
                                        labels: str | None, classes: tuple[str, ...],
                                        said: str) -> None:
    with pytest.raises(UsageError, match=said):
        JsonMapping.parse(template, scores, labels, classes)


def test_bad_adapters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UsageError, match="MODULE:FUNCTION"):
        load_adapter("no_colon")
    with pytest.raises(UsageError, match="cannot import"):
        load_adapter("surely_not_a_module_xyz:f")
    (tmp_path / "adapter_mod.py").write_text("x = 3\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(UsageError, match="has no 'f'"):
        load_adapter("adapter_mod:f")
    with pytest.raises(UsageError, match="not a function"):
        load_adapter("adapter_mod:x")


def test_status_lines_every_interval_and_at_the_end() -> None:
    out = io.StringIO()
    update = status_lines("http ", every_s=3600, out=out)
    for done in range(0, 2001, 256):
        update("single-stream", min(done, 2000), 2000)
    update("single-stream", 2000, 2000)
    update("single-stream", 2000, 2000)  # said once
    lines = out.getvalue().splitlines()
    assert lines == [lines[0]] and lines[0].startswith("http single-stream 2000/2000 (100%)")
    chatty = io.StringIO()
    update = status_lines("", every_s=0, out=chatty)
    update("offline", 10, 100)
    update("offline", 20, 100)
    assert len(chatty.getvalue().splitlines()) == 2


def test_a_bench_stops_at_its_max_duration(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bench", "--backend", "null", "--queries", "10000000", "--no-server",
                 "--no-robustness", "--energy", "off", "--max-duration-s", "1", "-o",
                 str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 3 and "overtime" in err and "--max-duration-s 1 reached in single-stream" in err
    assert list(tmp_path.glob("null-*/results.json"))  # what was measured is kept
