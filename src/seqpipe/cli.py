"""`seqpipe`: the stages DVC runs, plus list, predict and export. Configuration comes from params.yaml."""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from seqpipe import __version__, layout, process
from seqpipe.cli_parser import build_parser
from seqpipe.errors import SeqpipeError, environment_error, first_line

if TYPE_CHECKING:
    from seqpipe.fit import ResumeMode
    from seqpipe.params import Params
    from seqpipe.spec import ModelSpec

log = logging.getLogger("seqpipe")


def main(argv: list[str] | None = None) -> int:
    """The `seqpipe` command: its exit code (see seqpipe.errors.EXIT_CODES)."""
    with process.standard_streams(), process.terminate_on_signals():
        try:
            try:
                return _main(argv)
            finally:   # argparse's --help too: a full or closed stdout is reported here, not at exit
                process.flush_stdout()
        except BrokenPipeError:   # the reader of a pipe has gone (`seqpipe list | head -1`): quiet, as git
            process.silence_stdout()
            return process.BROKEN_PIPE_EXIT
        except process.StreamError as exc:
            process.silence_stdout()
            process.say(f"seqpipe: error: {exc}")
            return exc.exit_code
        except process.Terminated as exc:
            if os.environ.get("RANK", "0") == "0":   # under torchrun, rank 0 speaks for all
                process.say(f"seqpipe: {exc}")
            return exc.exit_code
        except KeyboardInterrupt:
            process.say("seqpipe: interrupted")
            return 130


def _main(argv: list[str] | None) -> int:
    args = build_parser(argv).parse_args(argv)
    _setup_logging()
    try:
        return _dispatch(args)
    except (BrokenPipeError, process.StreamError):   # main's to report
        raise
    except SeqpipeError as exc:
        # Under DDP every rank raises the interrupt; rank 0 reports it (RANK is torchrun's variable).
        if os.environ.get("RANK", "0") == "0" or not getattr(exc, "rank0_reports", False):
            process.say(f"seqpipe: error: {exc}")
        return exc.exit_code
    except Exception as exc:  # the last resort: one line, the traceback in a file (or on stderr with --debug)
        return _unexpected(exc, args.debug)


def _unexpected(exc: Exception, debug: bool) -> int:
    """Report an exception no module turned into a SeqpipeError: an environment fault (disk full,
    read-only, permission) as one line with exit code 3, anything else as an internal error."""
    if debug:
        traceback.print_exc()
    known = environment_error(exc)
    if known is not None:
        process.say(f"seqpipe: error: {known}")
        return known.exit_code
    where = "printed above" if debug else f"in {_crash_log(exc)}"
    process.say(f"seqpipe: error: internal error: {type(exc).__name__}: {first_line(exc)}; traceback {where}")
    return 1


def _crash_log(exc: Exception) -> str:
    """Write the traceback to a new file in the system temp folder (never a DVC output); its path,
    or a hint to rerun with --debug when even that cannot be written."""
    path = None
    try:
        fd, path = tempfile.mkstemp(prefix="seqpipe-crash-", suffix=".log")
        with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as fh:
            fh.write(f"seqpipe {__version__}: {' '.join(sys.argv)}\n")
            fh.write("".join(traceback.format_exception(exc)))
    except Exception:
        if path is not None:
            with contextlib.suppress(OSError):
                os.unlink(path)
        return "(not written: rerun with --debug)"
    return path


def _dispatch(args: argparse.Namespace) -> int:
    """Import only what the command needs: `list`, download and preprocess never load torch."""
    from seqpipe import live_runs, numerics, pipelines
    from seqpipe.params import load_params
    from seqpipe.stages import entry

    if args.command == "report":  # no model, no numerics: DVC's plots and metrics -> one HTML page
        from seqpipe.report import page
        print(page.write(args.revisions, args.output, args.models))
        return 0
    if args.command == "pr-report":  # the same, against BASE, as the pull request's markdown
        from seqpipe.report import markdown
        text = markdown.report(args.base, args.plots_dir, args.noise, args.models)
        # markdown is UTF-8 in any locale
        cast(io.TextIOWrapper, sys.stdout).reconfigure(encoding="utf-8", errors=sys.stdout.errors)
        sys.stdout.write(text)
        return 0
    if args.command == "dvc-yaml":
        from seqpipe import dvc_stages
        changed = dvc_stages.write(Path("dvc.yaml"), check=args.check)
        print("dvc.yaml " + ("written" if changed else "is up to date"))
        return 0
    if args.command == "docs":   # the reference pages: docs/cli.md from this parser, docs/params.md
        from seqpipe import docs_pages
        pages = docs_pages.write(Path("."), args.params, check=args.check)
        print(f"{', '.join(map(str, pages))} written" if pages else
              "docs/cli.md and docs/params.md are up to date")
        return 0
    if args.command == "completion":
        import shtab
        print(shtab.complete(build_parser(["completion"]), args.shell))
        return 0
    if args.command == "list":
        specs = [pipelines.get(name) for name in pipelines.names()]
        width = max(len(s.task) for s in specs) + 2
        for spec in specs:
            print(f"{spec.name:<14} {spec.task:<{width}} {spec.summary}")
        return 0
    if args.command == "check-params":
        from seqpipe.stages import check_params
        check_params.run([pipelines.get(name) for name in pipelines.names()],
                         load_params(args.params, pipelines.names()))
        return 0
    spec = pipelines.get(args.model)
    if args.command == "train":  # the launcher's options, checked before any wait for cores
        args.rendezvous = None if args.validate_only or "RANK" in os.environ else _rendezvous(args, spec.name)
    missing = [f"--{option}" for option in spec.predict_inputs if args.command == "predict" and
               getattr(args, option) is None]   # before params, torch and the model file are read
    if missing:
        raise SeqpipeError(f"predict {spec.name}: {' and '.join(missing)} "
                           f"{'are' if len(missing) > 1 else 'is'} required (seqpipe predict "
                           f"{spec.name} --help)")
    params = load_params(args.params, pipelines.names())
    # before numpy and torch load: they read the pinned kernels and thread counts when they do
    data_stage = args.command in entry.DATA_STAGES
    wanted = params.train(spec.name).num_threads
    # a set thread count holds that many cores while it trains (0 is a fair share instead; torchrun's
    # ranks run inside their launcher's hold; SEQPIPE_CORE_SLOTS=0 turns it off)
    if (args.command == "train" and wanted and "RANK" not in os.environ
            and os.environ.get("SEQPIPE_CORE_SLOTS") != "0"):
        params.section(spec.name, "model", spec.model_params)  # bad params fail at once, not after a wait
        total = numerics.usable_cores()
        live_runs.hold_cores(wanted, total, lambda: log.info(
            "train %s: waiting for %d of the %d cores, held by other seqpipe trainings (models.%s.train."
            "num_threads: 0 would share them instead)", spec.name, min(wanted, total), total, spec.name))
    if not data_stage:   # counted as a live training: concurrent runs share the cores (seqpipe.live_runs)
        live_runs.register()
    others = 0 if data_stage else live_runs.others()
    entry.configure_numerics(args.command, spec, params, others)
    if args.command == "train":
        return _train(spec, params, args)
    if args.command in entry.STAGES:
        entry.run_stage(args.command, spec, params)
    elif args.command == "predict":
        from seqpipe.stages import predict
        print(predict.run(spec, params, args))
    elif args.command == "export":
        from seqpipe.stages.export import export_onnx
        report = export_onnx(spec, args.output)
        print(f"wrote {report['path']} ({report['bytes']} bytes); onnxruntime vs torch max abs diff "
              f"{report['max_abs_diff']:.3g} over {report['checked_samples']} test samples; metadata_props:")
        for key, value in report["metadata"].items():
            print(f"  {key}: {value if len(value) <= 100 else value[:97] + '...'}")
    return 0


def _rendezvous(args: argparse.Namespace, name: str) -> dict[str, int | str | None]:
    """`seqpipe train`'s launch options, each from the command line or else its SEQPIPE_ variable,
    checked together (one line naming the option or variable): distributed.Rendezvous's fields (a
    plain dict: torch, which seqpipe.distributed imports, must not load before the numerics are set)."""
    from seqpipe.cli_parser import LAUNCH_ENV, at_least, endpoint

    parse: dict[str, Callable[[str], Any]] = {
        "nnodes": at_least(1), "node_rank": at_least(0), "rdzv_endpoint": endpoint, "rdzv_id": str,
        "max_restarts": at_least(0)}
    value, source = {}, {}
    for key, variable in LAUNCH_ENV.items():
        value[key], source[key] = getattr(args, key), "--" + key.replace("_", "-")
        if value[key] is None and os.environ.get(variable):
            source[key] = variable
            try:
                value[key] = parse[key](os.environ[variable])
            except argparse.ArgumentTypeError as exc:
                raise SeqpipeError(f"{variable}: {exc}") from None
    nnodes = value["nnodes"] or 1
    if nnodes > 1:
        missing = [f"{source[key]} (or {LAUNCH_ENV[key]})" for key in ("node_rank", "rdzv_endpoint")
                   if value[key] is None]
        if missing:
            raise SeqpipeError(f"{source['nnodes']} is {nnodes}: give {' and '.join(missing)} too "
                               "(docs/scale-out.md#several-machines)")
        if value["node_rank"] >= nnodes:
            raise SeqpipeError(f"{source['node_rank']} is {value['node_rank']} but {source['nnodes']} is "
                               f"{nnodes}: the nodes are 0 to {nnodes - 1}")
    else:
        stray = [source[key] for key in ("node_rank", "rdzv_endpoint", "rdzv_id") if value[key] is not None]
        if stray:
            raise SeqpipeError(f"{' and '.join(stray)}: only for a run on several machines "
                               "(--nnodes above 1)")
    return {"nnodes": nnodes, "node_rank": value["node_rank"] or 0, "endpoint": value["rdzv_endpoint"],
            "run_id": value["rdzv_id"] or f"seqpipe-{name}", "max_restarts": value["max_restarts"] or 0}


def _train(spec: ModelSpec, params: Params, args: argparse.Namespace) -> int:
    """The train stage, launched under torchrun when nproc_per_node > 1, on several nodes or with restarts;
    logs to models/MODEL/train.log."""
    from seqpipe import distributed
    from seqpipe.stages import entry

    # the sections the stage reads, parsed first: a bad key is one error line and nothing written
    # (no train.log)
    params.section(spec.name, "model", spec.model_params)
    nproc = params.train(spec.name).nproc_per_node
    rendezvous = None if args.rendezvous is None else distributed.Rendezvous(**args.rendezvous)
    if not args.validate_only:
        entry.check_output_folders("train", spec)
        if distributed.rank() != 0:  # under DDP, rank 0 alone logs
            logging.getLogger().setLevel(logging.WARNING)
        elif rendezvous is None or rendezvous.node_rank == 0:  # one launcher's lines: node 0's
            _log_to_file(layout.model_dir(spec.name) / "train.log")
        if rendezvous is not None and (nproc > 1 or rendezvous.nnodes > 1 or rendezvous.max_restarts):
            from seqpipe.fit import select_device
            distributed.check_launch(spec.name, nproc, select_device(params.device))
            flags = ["--resume"] if args.resume else ["--fresh"] if args.fresh else []
            debug = ["--debug"] if args.debug else []
            return distributed.launch([*debug, "--params", str(args.params), "train", spec.name, *flags],
                                      nproc, rendezvous)
    mode: ResumeMode = "resume" if args.resume else "fresh" if args.fresh else "auto"
    entry.run_stage("train", spec, params, resume=mode, validate_only=args.validate_only)
    return 0


LOG_FORMAT = "%(asctime)s %(levelname)s %(message)s"


class _TqdmLog(logging.StreamHandler):
    """Log lines on a terminal: written through tqdm.write, which clears the progress bars first and
    redraws them below, so a line never lands on a bar's fragment."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm import tqdm
            tqdm.write(self.format(record), file=self.stream)
        except Exception:  # what logging.StreamHandler does with a failing write
            self.handleError(record)


def _setup_logging() -> None:
    console = _TqdmLog(sys.stderr) if sys.stderr.isatty() else logging.StreamHandler(sys.stderr)
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, datefmt="%H:%M:%S", handlers=[console],
                        force=True)
    # rasterio logs GDAL errors at INFO; torch its cache statistics at exit when its import was cut short
    for noisy in ("dvclive", "matplotlib", "PIL", "rasterio", "torch"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class _FileLog(logging.FileHandler):
    """A log file that, when a write fails (disk full...), says so once and stops, instead of printing
    a traceback per record as logging does by default."""

    failed = False

    def emit(self, record: logging.LogRecord) -> None:
        if not self.failed:
            super().emit(record)

    def handleError(self, record: logging.LogRecord) -> None:
        if not self.failed:
            self.failed = True
            process.say(f"seqpipe: warning: {self.baseFilename}: log file not written from here on "
                        f"({first_line(sys.exc_info()[1] or Exception())})")


def _log_to_file(path: Path) -> None:
    """Training also logs to models/MODEL/train.log (appended across resumes)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = _FileLog(path, encoding="utf-8", errors="backslashreplace")
    except OSError as exc:
        raise environment_error(exc, path) or SeqpipeError(f"{path}: cannot open "
                                                           f"({first_line(exc)})") from exc
    handler.setFormatter(logging.Formatter(LOG_FORMAT, datefmt="%Y-%m-%d %H:%M:%S"))
    logging.getLogger().addHandler(handler)


if __name__ == "__main__":
    sys.exit(main())
