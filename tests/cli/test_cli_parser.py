"""The CLI guides: MODEL has the registered models as choices, `seqpipe predict MODEL --help` shows the
input options of that model with what they hold and an example, the top-level examples parse, an
unknown model is one line, shell completion knows the models, and log lines go through tqdm on a
terminal only. All in-process or one short subprocess each: no training here (see test_terminal_and_export)."""

from __future__ import annotations

import io
import json
import logging
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from seqpipe import cli, pipelines
from seqpipe.cli_parser import PATH_OPTIONS, build_parser
from tests.conftest import REPO, run, run_env

NAMES = pipelines.names()


def _help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        build_parser(argv).parse_args(argv)
    assert exit_info.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("command", ["download", "preprocess", "train", "evaluate", "export", "predict"])
def test_model_argument_lists_the_registered_models(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    text = _help([command, "--help"], capsys)
    assert f"one of: {', '.join(NAMES)}" in " ".join(text.split()), text
    sub = next(a for a in build_parser([command])._subparsers._group_actions)   # noqa: SLF001 (argparse has no API)
    model = next(a for a in sub.choices[command]._actions if a.dest == "model")  # noqa: SLF001
    assert sorted(model.choices) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_predict_help_shows_the_models_inputs_and_an_example(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    spec = pipelines.get(name)
    text = _help(["predict", name, "--help"], capsys)
    flat = " ".join(text.split())
    for option in PATH_OPTIONS:
        assert (f"--{option} PATH" in text) == (option in spec.predict_inputs), (option, text)
    assert "--output PATH" in text and "--model-file" in text
    if spec.predict_help:
        assert " ".join(spec.predict_help.split()) in flat, text
    else:
        assert f"src/seqpipe/pipelines/{name}/predict.py" in text
    example = spec.predict_example or f"seqpipe predict {name} " + " ".join(
        f"--{o} PATH" for o in spec.predict_inputs) + " --output PATH"
    assert example in text, text


def test_top_level_examples_parse_and_come_from_the_specs(capsys: pytest.CaptureFixture[str]) -> None:
    """Every `seqpipe ...` line of `seqpipe --help`'s examples is a valid command line, and each
    model's predict_example is among them."""
    text = _help(["--help"], capsys)
    examples = text.split("examples:\n")[1].split("\n\n")[0]
    commands = [line.split("  ")[1].strip() if "  " in line.strip() else line.strip()
                for line in examples.splitlines()]
    for spec in map(pipelines.get, NAMES):
        if spec.predict_example:
            assert spec.predict_example in examples, (spec.name, examples)
    checked = 0
    for command in commands:
        argv = shlex.split(command.replace("<(", "").replace(")", ""))
        if argv[0] == "source":
            argv = argv[1:]
        assert argv[0] == "seqpipe", command
        if "--help" in argv or "MODEL" in argv:
            continue
        build_parser(argv[1:]).parse_args(argv[1:])
        checked += 1
    assert checked >= 4, examples


def test_unknown_model_is_one_line_and_exit_1(tmp_path: Path) -> None:
    for argv in (["predict", "nope", "--input", "x.csv", "--output", "y.csv"], ["train", "nope"],
                 ["export", "nope"]):
        proc = run(["seqpipe", *argv], tmp_path, check=False)
        assert proc.returncode == 1, proc.stderr
        assert proc.stderr.splitlines() == [f"seqpipe: error: unknown model 'nope' (known: {', '.join(NAMES)})"]


def test_predict_refuses_another_models_input_option(tmp_path: Path) -> None:
    proc = run(["seqpipe", "predict", "bandwidth", "--before", "a.tif", "--output", "y.csv"], tmp_path, check=False)
    assert proc.returncode == 2 and proc.stderr.splitlines()[-1] == \
        "seqpipe: error: unrecognized arguments: --before a.tif", proc.stderr
    for name, argv, missing in (("bandwidth", [], "--input is"), ("ice_change", ["--after", "b.tif"], "--before is"),
                                ("ice_change", [], "--before and --after are")):
        proc = run(["seqpipe", "predict", name, *argv, "--output", "y.csv"], tmp_path, check=False)
        assert proc.returncode == 1 and proc.stderr.splitlines() == \
            [f"seqpipe: error: predict {name}: {missing} required (seqpipe predict {name} --help)"], proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_completion_script_knows_commands_and_models(shell: str, tmp_path: Path) -> None:
    proc = run(["seqpipe", "completion", shell], tmp_path)
    for word in [*NAMES, "predict", "train", "--before", "--validate-only"]:
        assert word in proc.stdout, word
    if shell == "bash":
        syntax = subprocess.run(["bash", "-n"], input=proc.stdout, capture_output=True, text=True)
        assert syntax.returncode == 0, syntax.stderr


def test_a_stage_builds_its_parser_without_other_models(tmp_path: Path) -> None:
    """`seqpipe train bandwidth` imports bandwidth's folder alone (dvc.yaml's deps), `--help` all of them."""
    code = ("import json, sys\nfrom seqpipe.cli_parser import build_parser\nbuild_parser(sys.argv[1:])\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith('seqpipe.pipelines.'))))")
    for argv, expected in ((["train", "bandwidth"], []),
                           (["predict", "bandwidth"], [f"seqpipe.pipelines.{n}" for n in NAMES])):
        proc = subprocess.run([sys.executable, "-c", code, *argv], cwd=tmp_path, env=run_env(REPO),
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout) == expected


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("stream", [io.StringIO, _Terminal])
def test_log_lines_go_through_tqdm_on_a_terminal_only(stream: type, monkeypatch: pytest.MonkeyPatch) -> None:
    err = stream()
    monkeypatch.setattr(sys, "stderr", err)
    try:
        cli._setup_logging()  # noqa: SLF001
        (handler,) = logging.getLogger().handlers
        assert isinstance(handler, cli._TqdmLog) == err.isatty()  # noqa: SLF001
        logging.getLogger("seqpipe").info("hello")
    finally:
        logging.getLogger().handlers.clear()
    assert err.getvalue().endswith(" INFO hello\n"), err.getvalue()
