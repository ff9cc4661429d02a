"""The complexity gate of `make lint` (tools/complexity_gate.py): a function above the grade fails unless
a `# complexity:` comment on it says why, and a reason on a function that needs none fails too."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.complexity_gate import main

# Eleven decisions: radon grade C (11-20).
BRANCHY = "\n".join(
    ["def branchy(x):", *[f"    if x == {n}:\n        return {n}" for n in range(11)], "    return -1", ""]
)


def _run(tmp_path: Path, source: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    (tmp_path / "module.py").write_text(source)
    code = main(["--max", "B", str(tmp_path)])
    return code, capsys.readouterr().out


def test_a_function_above_b_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(tmp_path, BRANCHY, capsys)
    assert code == 1
    assert "module.py:1 branchy C (12)" in out


def test_a_reason_above_the_function_lets_it_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(tmp_path, "# complexity: a lookup table written out\n" + BRANCHY, capsys)
    assert code == 0
    assert "0 failing, 1 above B with a reason" in out


def test_a_reason_above_decorators_counts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = "import functools\n\n\n# complexity: flat cases\n@functools.cache\n" + BRANCHY
    code, _ = _run(tmp_path, source, capsys)
    assert code == 0


def test_a_reason_on_a_simple_function_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(tmp_path, "# complexity: not needed\ndef simple():\n    return 1\n", capsys)
    assert code == 1
    assert "module.py:1: '# complexity:' comment on no function above B" in out


def test_a_reason_apart_from_the_function_does_not_count(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(tmp_path, "# complexity: a lookup table written out\n\n" + BRANCHY, capsys)
    assert code == 1
    assert "branchy C (12): above B" in out
