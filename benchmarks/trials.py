"""The standing trial suite's results table (issue 16): runs the trial modules in tests/trials/
under pytest with a JUnit XML report (or reads one), counts each parametrized case, and writes the
table into benchmarks/README.md between `<!-- trials:start -->` and `<!-- trials:end -->`.

- Bad-input corpus (`tests/trials/test_bad_input_corpus.py`): one row per kind of `CORPUS`;
  handled = its case passed (held back or reported with a reason, or refused with an error naming
  what to fix); xfail = a known gap, marked `xfail(strict=True)` with its reason.
- Every other trial module found (secret scan; fault matrix, kill trials and concurrency when their
  files exist): its cases by test function, passed / xfail / failed / skipped.

    .venv/bin/python -m benchmarks.trials [--fast] [--xml report.xml] [--no-write]

`--fast` leaves out tests marked slow; `--xml` reads an existing report instead of running pytest.
Asserts nothing about time; exits non-zero when a case failed.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TRIALS = REPO / "tests" / "trials"
README = REPO / "benchmarks" / "README.md"
START, END = "<!-- trials:start -->", "<!-- trials:end -->"
CORPUS_MODULE = "test_bad_input_corpus"
# Trial modules another helper adds; counted when present.
MODULES = (
    CORPUS_MODULE,
    "test_secret_scan",
    "test_fault_matrix",
    "test_kill_trials",
    "test_concurrency",
)


@dataclass(frozen=True)
class Case:
    module: str  # test module name, e.g. test_fault_matrix
    test: str  # test function, e.g. test_a_fault_leaves_chaser_exact
    param: str  # parametrization id ("" when none)
    outcome: str  # passed | failed | xfail | skipped
    seconds: float
    message: str = ""


def run_pytest(xml: Path, fast: bool) -> int:
    files = [str(TRIALS / f"{m}.py") for m in MODULES if (TRIALS / f"{m}.py").exists()]
    files += sorted(
        str(p) for p in TRIALS.glob("test_*.py") if p.stem not in MODULES
    )  # any trial module added later
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rN"]
    command += [f"--junitxml={xml}", *files] + (["-m", "not slow"] if fast else [])
    return subprocess.run(command, cwd=REPO).returncode


def read_cases(xml: Path) -> list[Case]:
    cases = []
    for element in ET.parse(xml).getroot().iter("testcase"):
        module = element.get("classname", "").rsplit(".", 1)[-1]
        name = element.get("name", "")
        test, _, param = name.partition("[")
        outcome, message = "passed", ""
        for child in element:
            if child.tag in ("failure", "error"):
                outcome, message = "failed", child.get("message", "")
            elif child.tag == "skipped":
                xfail = child.get("type") == "pytest.xfail"
                outcome, message = ("xfail" if xfail else "skipped"), child.get("message", "")
        seconds = float(element.get("time", 0) or 0)
        cases.append(Case(module, test, param[:-1] if param else "", outcome, seconds, message))
    return cases


def corpus_rows(cases: list[Case]) -> tuple[list[str], list[str]]:
    """Markdown rows per expectation, and one line per kind not handled."""
    sys.path.insert(0, str(REPO))
    from tests.trials.corpus import CORPUS

    by_param = {c.param: c for c in cases if c.module == CORPUS_MODULE and c.param}
    counts: dict[str, Counter] = defaultdict(Counter)
    notes = []
    for kind in CORPUS:
        case = by_param.get(kind.name)
        outcome = case.outcome if case else "not run"
        counts[kind.expect]["tried"] += 1
        counts[kind.expect]["handled" if outcome == "passed" else outcome] += 1
        if outcome not in ("passed", "not run"):
            reason = kind.xfail or (case.message if case else "")
            notes.append(f"- {kind.name} ({kind.table}): {outcome}; {reason}".rstrip("; "))
    rows = []
    total = Counter()
    for expect, count in sorted(counts.items()):
        total.update(count)
        rows.append(_corpus_row(expect, count))
    rows.append(_corpus_row("**all kinds**", total))
    return rows, notes


def _corpus_row(label: str, count: Counter) -> str:
    other = count["tried"] - count["handled"] - count["xfail"]
    return f"| {label} | {count['tried']} | {count['handled']} | {count['xfail']} | {other} |"


def module_rows(cases: list[Case]) -> list[str]:
    groups: dict[tuple[str, str], Counter] = defaultdict(Counter)
    seconds: Counter = Counter()
    for case in cases:
        groups[(case.module, case.test)][case.outcome] += 1
        seconds[(case.module, case.test)] += case.seconds
    rows = []
    for (module, test), count in sorted(groups.items()):
        rows.append(
            f"| {module} | {test} | {sum(count.values())} | {count['passed']} | {count['xfail']} "
            f"| {count['failed']} | {count['skipped']} | {seconds[(module, test)]:.1f} |"
        )
    return rows


def section(cases: list[Case], fast: bool) -> str:
    corpus, notes = corpus_rows(cases)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        START,
        "### Trial suite (`benchmarks/trials.py`, the modules in `tests/trials/`)",
        "",
        f"Measured {when}; machine: 2 cores, 24 GB; load average {load}"
        + (" (slow tests left out)" if fast else "")
        + ".",
        "",
        "Bad-input corpus: kinds tried, and handled (held back or reported with a readable "
        "reason, refused with an error naming what to fix, or normalised as the contract says).",
        "",
        "| expectation | kinds | handled | xfail (known gap) | failed / not run |",
        "|---|---|---|---|---|",
        *corpus,
        "",
        *(["Kinds not handled:", "", *notes, ""] if notes else []),
        "Every trial case by module and test (a parametrized test counts each case):",
        "",
        "| module | test | cases | passed | xfail | failed | skipped | seconds |",
        "|---|---|---|---|---|---|---|---|",
        *module_rows(cases),
        END,
    ]
    return "\n".join(lines)


def write_section(text: str, readme: Path = README) -> None:
    content = readme.read_text()
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)
    if pattern.search(content):
        content = pattern.sub(lambda _m: text, content)
    else:
        content = content.rstrip("\n") + "\n\n" + text + "\n"
    readme.write_text(content)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fast", action="store_true", help="leave out tests marked slow")
    parser.add_argument("--xml", type=Path, help="read this JUnit XML instead of running pytest")
    parser.add_argument("--no-write", action="store_true", help="print only; leave the README")
    args = parser.parse_args(argv)
    started = time.monotonic()
    if args.xml:
        cases = read_cases(args.xml)
    else:
        with tempfile.TemporaryDirectory() as folder:
            xml = Path(folder) / "trials.xml"
            run_pytest(xml, args.fast)
            cases = read_cases(xml)
    text = section(cases, args.fast)
    print(text)
    print(f"\n{len(cases)} cases in {time.monotonic() - started:.1f} s")
    if not args.no_write:
        write_section(text)
        print(f"wrote the section into {README.relative_to(REPO)}")
    return 1 if any(c.outcome == "failed" for c in cases) else 0


if __name__ == "__main__":
    sys.exit(main())
