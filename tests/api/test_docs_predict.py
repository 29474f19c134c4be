"""docs/predict.md's "Predict and export" and "Python API" examples run verbatim on a tiny trained copy of
the repository (tests/api/conftest.py), and they are the examples `seqpipe predict MODEL --help` shows."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

from seqpipe import pipelines
from tests.conftest import REPO, run

PAGE = (REPO / "docs/predict.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    """The text of the page's `## title` section, up to the next one."""
    start = PAGE.index(f"\n## {title}\n")
    end = PAGE.find("\n## ", start + 1)
    return PAGE[start:] if end < 0 else PAGE[start:end]


def predict_commands() -> list[str]:
    return [line[2:] for line in PAGE.splitlines() if line.startswith("$ seqpipe predict ")]


def api_example() -> tuple[str, list[str]]:
    """The Python API section's code block and the console block that shows its output."""
    blocks = re.findall(r"```(python|console)\n(.*?)```", section("Python API"), re.S)
    code = next(text for kind, text in blocks if kind == "python")
    shown = next(text for kind, text in blocks if kind == "console")
    return code, shown.splitlines()


def test_the_page_shows_each_models_help_example_once() -> None:
    commands = predict_commands()
    examples = [pipelines.get(name).predict_example for name in pipelines.names()]
    assert all(examples) and sorted(commands) == sorted(examples)
    assert all(command in section("Predict and export") for command in commands)


def test_the_pages_predict_commands_run_verbatim(trained_repo: Path) -> None:
    for command in predict_commands():
        args = shlex.split(command)
        output = args[args.index("--output") + 1]
        proc = run(args, trained_repo)
        assert proc.stdout.startswith(f"wrote {output}: "), (command, proc.stdout)
        assert len(proc.stdout.strip().splitlines()) == 1 and (trained_repo / output).stat().st_size > 0


def test_the_pages_python_api_example_runs_verbatim(trained_repo: Path) -> None:
    code, shown = api_example()
    lines = run([sys.executable, "-c", code], trained_repo).stdout.splitlines()
    assert len(lines) == len(shown), lines
    # the tiny params' window (8) gives more rows than the page's 20; the columns are the same
    assert re.fullmatch(r"\(53, 4\) \['throughput_mbps', 'rtt_ms', 'packet_loss', 'jitter_ms'\] \[.*\]", lines[0])
    assert lines[1] == shown[1]                       # freq_filter: [samples, frequencies]
    assert lines[2].split()[0] in ("open_water", "thin_ice", "thick_ice")
    assert lines[3] == shown[3]                       # the one-line error naming the missing columns
