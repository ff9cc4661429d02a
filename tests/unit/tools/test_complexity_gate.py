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


@pytest.mark.parametrize(
    ("source", "code", "said"),
    [
        pytest.param(BRANCHY, 1, "module.py:1 branchy C (12): above B", id="above B fails"),
        pytest.param(
            "# complexity: a lookup table\n" + BRANCHY, 0, "0 failing, 1 above B with a reason", id="reason passes"
        ),
        pytest.param(
            "import functools\n\n\n# complexity: flat cases\n@functools.cache\n" + BRANCHY,
            0,
            "0 failing, 1 above B with a reason",
            id="reason above the decorators passes",
        ),
        pytest.param(
            "# complexity: a lookup table\n\n" + BRANCHY, 1, "branchy C (12): above B", id="reason apart fails"
        ),
        pytest.param(
            "# complexity: not needed\ndef simple():\n    return 1\n",
            1,
            "module.py:1: '# complexity:' comment on no function above B",
            id="reason on a simple function fails",
        ),
    ],
)
def test_gate(tmp_path: Path, capsys: pytest.CaptureFixture[str], source: str, code: int, said: str) -> None:
    (tmp_path / "module.py").write_text(source)
    assert main(["--max", "B", str(tmp_path)]) == code
    assert said in capsys.readouterr().out
