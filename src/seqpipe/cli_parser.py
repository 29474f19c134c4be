"""The `seqpipe` argument parser: every subcommand, the registered models as the choices of MODEL,
and `seqpipe predict MODEL --help` built from each model's ModelSpec (its input options, what they
must hold, a runnable example). Cheap to build: model `__init__.py` files only, never torch."""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from seqpipe import __version__, pipelines
from seqpipe.errors import EXIT_CODES
from seqpipe.spec import ModelSpec

DESCRIPTION = ("`seqpipe`: the stages DVC runs, plus list, predict and export. Configuration comes from "
               "params.yaml.")
INPUT_HELP = {"input": "input file or folder (required)",
              "before": "the earlier raster, t1 (required)",
              "after": "the later raster, t2, on the same grid as --before (required)"}
COMMANDS = ("list", "check-params", "download", "preprocess", "train", "evaluate", "predict", "dvc-yaml",
            "export", "completion", "report", "pr-report", "docs")
PATH_OPTIONS = ("input", "before", "after")   # every predict path option; a model takes its spec's


class Parser(argparse.ArgumentParser):
    """argparse, except that an unknown MODEL is the same one line (exit 1) whichever way it is
    given: `seqpipe train nope` and `seqpipe predict nope ...` say what `pipelines.get` says."""

    def _check_value(self, action: argparse.Action, value: object) -> None:
        if action.dest == "model" and action.choices is not None and value not in action.choices:
            self.exit(1, f"seqpipe: error: unknown model {value!r} (known: {', '.join(pipelines.names())})\n")
        super()._check_value(action, value)

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"seqpipe: error: {message}\n")


def epilog(specs: list[ModelSpec], model: str) -> str:
    """The top-level help's examples (`model`: the one they name) and exit codes."""
    examples = [("seqpipe list", "registered models"),
                (f"seqpipe train {model} --validate-only", "check params, data and network; write nothing"),
                (f"seqpipe train {model} --fresh", "ignore checkpoints and start over"),
                *[(spec.predict_example, "") for spec in specs if spec.predict_example],
                ("seqpipe predict MODEL --help", "the input a model's predict expects, with an example"),
                (f"seqpipe export {model}", f"models/{model}/model.onnx with its metadata, checked "
                 "with onnxruntime"),
                ("source <(seqpipe completion bash)", "tab completion of commands, models and "
                 "options (or zsh)")]
    width = max(len(cmd) for cmd, text in examples if text) + 2
    lines = [f"  {cmd:<{width}} {text}".rstrip() for cmd, text in examples]
    codes = [f"  {code:<4} {text}" for code, text in EXIT_CODES.items()]
    return ("examples:\n" + "\n".join(lines) + "\n\nStages are normally run by `dvc repro`; every "
            "hyperparameter lives in params.yaml.\n\nexit codes:\n" + "\n".join(codes) + "\nAn error is one "
            "line `seqpipe: error: <file or key>: <what is wrong>`; an unexpected one also names a\nlog file "
            "holding the traceback (--debug prints it instead).")


def _model_argument(parser: argparse.ArgumentParser, names: list[str]) -> None:
    parser.add_argument("model", choices=names, metavar="MODEL", help=f"one of: {', '.join(names)}")


def _predict_parsers(sub: argparse._SubParsersAction, specs: list[ModelSpec]) -> None:
    """`seqpipe predict MODEL ...`: one parser per model, with the path options its predict reads."""
    names = [spec.name for spec in specs]
    predict = sub.add_parser("predict",
                             help="run a trained model on new input (seqpipe predict MODEL --help)",
                             description="Run a trained model on new input; `seqpipe predict MODEL --help` "
                             "says what MODEL's input must be.")
    models = predict.add_subparsers(dest="model", required=True, metavar="MODEL",
                                    help=f"one of: {', '.join(names)}")
    for spec in specs:
        example = (f"example (on a fresh clone after `make repro`):\n  {spec.predict_example}"
                   if spec.predict_example else
                   f"example:\n  seqpipe predict {spec.name} "
                   + " ".join(f"--{o} PATH" for o in spec.predict_inputs) + " --output PATH")
        text = spec.predict_help or f"{' and '.join('--' + o for o in spec.predict_inputs)}: see " \
            f"src/seqpipe/pipelines/{spec.name}/predict.py"
        description = "\n".join(textwrap.fill(line, 100,
                                              subsequent_indent="  " if line.startswith("  ") else "")
                                for line in f"{spec.summary}\n\ninput: {text}".splitlines())
        model = models.add_parser(spec.name, help=spec.summary, description=description,
                                  epilog=example, formatter_class=argparse.RawDescriptionHelpFormatter)
        model.set_defaults(**{option: None for option in PATH_OPTIONS})
        for option in spec.predict_inputs:
            model.add_argument(f"--{option}", type=Path, metavar="PATH",
                               help=INPUT_HELP.get(option, "(required)"))
        model.add_argument("--output", type=str, required=True, metavar="PATH", help="output file")
        model.add_argument("--model-file", type=Path, metavar="PATH",
                           help=f"model file (default: models/{spec.name}/model.pt); "
                           "a checkpoint of the run that wrote that model.pt works too")
        model.add_argument("--force", action="store_true", help="write --output even over the model file, an "
                           "input, params.yaml, dvc.yaml/dvc.lock or a path DVC tracks")
        model.add_argument("--trust-unverified", action="store_true",
                           help="load a model file that has no sha256 digest (its weights cannot be checked)")


def build_parser(argv: list[str] | None = None) -> Parser:
    """The parser for command line `argv` (default: sys.argv[1:]). The model specs (for the predict
    help and the examples) load only for `predict`, `completion` and the top-level help: a stage
    imports its own model's folder alone, as dvc.yaml's deps say."""
    names = pipelines.names()
    command = next((arg for arg in (sys.argv[1:] if argv is None else argv) if arg in COMMANDS), None)
    specs = [pipelines.get(name) for name in names] if command in (None, "predict", "completion") else []
    parser = Parser(prog="seqpipe", description=DESCRIPTION, epilog=epilog(specs, names[0]),
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"seqpipe {__version__}")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"),
                        help="params file (default: params.yaml)")
    parser.add_argument("--debug", action="store_true", help="print the traceback of an unexpected error")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("list", help="list registered models")
    sub.add_parser("check-params", help="parse every section of params.yaml -> "
                   "data/params.checked (the first stage DVC runs: a bad value stops `dvc repro` before any "
                   "output is deleted)")
    for stage, text in (("download", "fetch or generate raw data into data/raw/MODEL/"),
                        ("preprocess", "raw data -> train/val/test arrays in data/processed/MODEL/")):
        _model_argument(sub.add_parser(stage, help=text), names)
    train = sub.add_parser("train", help="train MODEL -> models/MODEL/model.pt (resumes a "
                           "matching checkpoint)",
                           formatter_class=argparse.RawDescriptionHelpFormatter, epilog=TRAIN_EPILOG)
    _model_argument(train, names)
    mode = train.add_mutually_exclusive_group()
    mode.add_argument("--resume", action="store_true", help="require and resume this params set's checkpoint "
                      "(models/MODEL/checkpoints/FINGERPRINT/last.pt)")
    mode.add_argument("--fresh", action="store_true", help="delete this params set's checkpoints and start "
                      "from scratch")
    mode.add_argument("--validate-only", action="store_true",
                      help="check params, data and network with one batch and a validation pass; "
                      "write nothing")
    _launch_options(train)
    _model_argument(sub.add_parser("evaluate", help="test metrics and baselines -> metrics/MODEL.json, "
                                   "plots/MODEL/eval/"), names)
    if specs:
        _predict_parsers(sub, specs)
    else:  # never this command's: see above
        sub.add_parser("predict", help="run a trained model on new input (seqpipe predict MODEL --help)")
    dvc_yaml = sub.add_parser("dvc-yaml", help="write dvc.yaml's stages from the model folders (deps = what "
                              "each stage imports)")
    dvc_yaml.add_argument("--check", action="store_true", help="only check that dvc.yaml is up to date "
                          "(exit 1 if not)")
    docs = sub.add_parser("docs", help="write docs/cli.md (from this argument parser) and docs/params.md "
                          "(from the params classes and params.yaml's values)")
    docs.add_argument("--check", action="store_true",
                      help="only check that both pages are up to date (exit 1 if not)")
    export = sub.add_parser("export", help="export MODEL to ONNX with self-describing metadata, checked "
                            "against torch")
    _model_argument(export, names)
    export.add_argument("--output", type=str, help="default: models/MODEL/model.onnx")
    completion = sub.add_parser("completion", help="print a shell completion script (bash or zsh)")
    completion.add_argument("shell", choices=["bash", "zsh"], help="bash: `source <(seqpipe "
                            "completion bash)`")
    report = sub.add_parser(
        "report", help="plots and headline metrics -> one self-contained HTML page that opens offline",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Render the plots DVC defines (`dvc plots show/diff --json`: dvc.yaml's plots, "
        "its templates, image plots)\nand metrics/MODEL.json (`dvc metrics show/diff --json`) into one HTML "
        "page with Vega inlined:\nno CDN, no network request (the page `dvc plots show` writes loads Vega "
        "from the internet).",
        epilog="examples:\n  seqpipe report                      the workspace -> report.html\n"
        "  seqpipe report HEAD                 HEAD vs the workspace (as `dvc plots diff HEAD`)\n"
        "  seqpipe report main my-branch       two revisions, with the change of each metric\n"
        f"  seqpipe report --model {names[0]} --output /tmp/{names[0]}.html")
    report.add_argument("revisions", nargs="*", metavar="REV", help="git revisions or "
                        "experiments: none = the workspace; one = REV vs the workspace; more = those "
                        "revisions, metrics diffed against the first")
    report.add_argument("--output", type=str, default="report.html", metavar="PATH",
                        help="HTML file (default: report.html)")
    report.add_argument("--model", action="append", dest="models", metavar="NAME",
                        help="only this model's plots and metrics (repeatable; default: all)")
    _pr_report_parser(sub)
    return parser


TRAIN_EPILOG = """examples:
  seqpipe train MODEL --nnodes 2 --node-rank 0 --rdzv-endpoint node0:29400   on node0, which hosts the
                                                                              rendezvous
  seqpipe train MODEL --nnodes 2 --node-rank 1 --rdzv-endpoint node0:29400   on the other machine, in the
                                                                              same folder
  seqpipe train MODEL --max-restarts 1             restart the workers once if one fails; they resume

Where a run happens is no param: the same params train the same weights on any split of the
world size (nproc_per_node x nodes) over machines. Every node runs in the same folder on a shared
file system (docs/scale-out.md#several-machines)."""
# `seqpipe train`'s launch options and their environment fallbacks (for `dvc repro`, whose cmd is fixed)
LAUNCH_ENV = {"nnodes": "SEQPIPE_NNODES", "node_rank": "SEQPIPE_NODE_RANK",
              "rdzv_endpoint": "SEQPIPE_RDZV_ENDPOINT", "rdzv_id": "SEQPIPE_RDZV_ID",
              "max_restarts": "SEQPIPE_MAX_RESTARTS"}


def at_least(low: int) -> Callable[[str], int]:
    """An argument type: a whole number >= `low`."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if value < low:
            raise argparse.ArgumentTypeError(f"'{text}' is not a whole number >= {low}")
        return value
    return parse


def endpoint(text: str) -> str:
    """--rdzv-endpoint: HOST:PORT (an IPv6 address in brackets: [::1]:29400)."""
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"'{text}' is not HOST:PORT (e.g. node0:29400 or 10.0.0.1:29400)")
    return text


def _launch_options(train: argparse.ArgumentParser) -> None:
    where = train.add_argument_group(
        "launch (torchrun; each option falls back to its SEQPIPE_ environment variable)")
    where.add_argument("--nnodes", type=at_least(1), metavar="N",
                       help="machines training together, each running this command with its own --node-rank "
                       "(default 1; SEQPIPE_NNODES)")
    where.add_argument("--node-rank", type=at_least(0), metavar="R",
                       help="this machine, 0 to N-1; node 0 hosts the rendezvous (SEQPIPE_NODE_RANK)")
    where.add_argument("--rdzv-endpoint", type=endpoint, metavar="HOST:PORT",
                       help="node 0's address and a free port, the same on every node "
                       "(SEQPIPE_RDZV_ENDPOINT)")
    where.add_argument("--rdzv-id", metavar="ID", help="the run's name in the rendezvous, the same on every "
                       "node (default seqpipe-MODEL; SEQPIPE_RDZV_ID)")
    where.add_argument("--max-restarts", type=at_least(0), metavar="K",
                       help="when a worker fails, restart every worker up to K times; they resume from "
                       "last.pt (default 0; SEQPIPE_MAX_RESTARTS)")


def fraction(text: str) -> float:
    """--noise: a number in [0, 1)."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not a fraction in [0, 1) (e.g. 0.005 for 0.5%)")
    return value


def _pr_report_parser(sub: argparse._SubParsersAction) -> None:
    """`seqpipe pr-report BASE [PLOTS_DIR]`: the pull-request comment (scripts/pr_report.sh runs it)."""
    pr = sub.add_parser(
        "pr-report", formatter_class=argparse.RawDescriptionHelpFormatter,
        help="what the workspace changes against BASE -> markdown: params, metric verdicts, changed plots as "
        "PNGs (the pull-request comment)",
        description="Markdown on stdout of what the workspace changes against BASE (a git commit):\n"
        "  params   every key whose value differs (`dvc params diff BASE`)\n"
        "  metrics  per model, each metric at BASE and now, delta and a better/worse verdict by the\n"
        "           metric's direction, beside its baselines (`dvc metrics diff BASE --all`);\n"
        "           an untouched model is one line\n"
        "  plots    each plot whose data or image differs, as PNGs in PLOTS_DIR linked relatively:\n"
        "           a chart is DVC's own Vega-Lite spec (the templates in .dvc/plots/, both revisions)\n"
        "           rendered by vl-convert, an image plot its two PNGs as they are\n"
        "PLOTS_DIR/index.html is the `seqpipe report BASE` page (every plot and metric, offline).\n"
        "Files are written once the whole report is ready; a wrong argument is one line and exit code 2.",
        epilog="examples:\n  seqpipe pr-report main > report.md                 PNGs in dvc_plots/\n"
        "  seqpipe pr-report --noise 0.01 main > report.md    changes within 1% read \"same\"\n"
        "  seqpipe pr-report origin/main /tmp/plots > /tmp/report.md")
    pr.add_argument("base", metavar="BASE", help="the git commit to compare the workspace with (a branch, "
                    "tag or sha; a branch of a remote needs `git fetch` first)")
    pr.add_argument("plots_dir", nargs="?", type=Path, default=Path("dvc_plots"), metavar="PLOTS_DIR",
                    help="folder for the PNGs the report links and index.html (default: dvc_plots)")
    pr.add_argument("--noise", type=fraction, metavar="FRACTION",
                    help="a metric that moved by no more than this share of its BASE value reads \"same\" "
                    "(default 0.005, i.e. 0.5%%)")
    pr.add_argument("--model", action="append", dest="models", metavar="NAME",
                    help="only this model's metrics and plots (repeatable; default: all)")
