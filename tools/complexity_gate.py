"""The per-function complexity gate of `make lint` (README, "Development").

No function or method of the given paths may rank above `--max` (radon's cyclomatic complexity grades,
as xenon's `--max-absolute`), unless a comment on it says why:

    # complexity: one branch per field AIRUDDER may send it as; split, the rules would hide each other
    def parse(...):

The comment stands in the comment lines right above the `def` (or its decorators) or at the end of the
`def` line. xenon has no per-function exception, so this script applies that rule; `make lint-complexity`
runs xenon for the module and average grades. A `# complexity:` comment on a function that no longer needs
it fails too, so the reasons stay true.

    python -m tools.complexity_gate [--max B] PATH...
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from radon.complexity import cc_rank, cc_visit
from radon.visitors import Class, Function

REASON = re.compile(r"#\s*complexity:\s*(\S.*)$")


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    name: str
    rank: str
    complexity: int
    reason: str | None  # the comment that justifies it; None: not justified


def python_files(paths: Sequence[str]) -> Iterator[Path]:
    for name in paths:
        path = Path(name)
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*.py") if not any(part.startswith(".") for part in p.parts))
        elif path.suffix == ".py":
            yield path


def functions(blocks: Sequence[Function | Class]) -> Iterator[Function]:
    """Every function and method radon grades (radon lists methods both in their class and on their own;
    closures count in their enclosing function, as in xenon)."""
    return (block for block in blocks if isinstance(block, Function))


def reason_line(lines: Sequence[str], def_line: int) -> int | None:
    """The number (1-based) of the `# complexity:` line on the function defined at `def_line`, if any."""
    if REASON.search(lines[def_line - 1]):
        return def_line
    number = def_line - 1
    while number >= 1:
        text = lines[number - 1].strip()
        if text.startswith("#"):
            if REASON.search(text):
                return number
        elif not text.startswith("@"):
            return None
        number -= 1
    return None


def check_file(path: Path, worst: str) -> tuple[list[Finding], list[int]]:
    """The functions of `path` ranked above `worst` (justified or not), and the lines of `# complexity:`
    comments that justify nothing."""
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    findings: list[Finding] = []
    used: set[int] = set()
    for block in functions(cc_visit(source)):
        rank = cc_rank(block.complexity)
        if rank <= worst:
            continue
        line = reason_line(lines, block.lineno)
        reason = None
        if line is not None:
            used.add(line)
            match = REASON.search(lines[line - 1])
            reason = match.group(1).strip() if match else None
        findings.append(Finding(str(path), block.lineno, block.fullname, rank, block.complexity, reason))
    stale = [n for n, text in enumerate(lines, 1) if n not in used and _is_reason_comment(text)]
    return findings, stale


def _is_reason_comment(text: str) -> bool:
    """A `# complexity:` comment line, or one at the end of a `def` line (not a string that holds it)."""
    code = text.strip()
    return bool(REASON.search(code)) and code.startswith(("#", "def ", "async def "))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--max", default="B", type=str.upper, choices=list("ABCDEF"), help="worst rank allowed")
    parser.add_argument("-v", "--verbose", action="store_true", help="list the justified functions too")
    parser.add_argument("paths", nargs="+")
    args = parser.parse_args(argv)
    failed = justified = 0
    for path in python_files(args.paths):
        findings, stale = check_file(path, args.max)
        for f in findings:
            where = f"{f.path}:{f.line} {f.name} {f.rank} ({f.complexity})"
            if f.reason is None:
                failed += 1
                print(f"{where}: above {args.max}; split it into named steps, or say why in a '# complexity:' comment")
            else:
                justified += 1
                if args.verbose:
                    print(f"{where}: {f.reason}")
        for line in stale:
            failed += 1
            print(f"{path}:{line}: '# complexity:' comment on no function above {args.max}; remove it")
    print(f"complexity gate: {failed} failing, {justified} above {args.max} with a reason")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
