"""`seqpipe`: the stages DVC runs, plus list, predict and export. Configuration comes from params.yaml."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

from seqpipe import __version__, layout
from seqpipe.errors import EXIT_CODES, SeqpipeError, environment_error, first_line

if TYPE_CHECKING:
    from seqpipe.params import Params
    from seqpipe.spec import ModelSpec

log = logging.getLogger("seqpipe")

EPILOG = """\
examples:
  seqpipe list                              registered models
  seqpipe train bandwidth --validate-only   check params, data and network; write nothing
  seqpipe train bandwidth --fresh           ignore checkpoints and start over
  seqpipe predict bandwidth --input metrics.csv --output forecast.csv
  seqpipe predict ice_forecast --input daily_tifs/ --output forecast.tif
  seqpipe predict ice_change --before A.tif --after B.tif --output change.tif
  seqpipe predict crop_ndvi --input s2_stack/ --output next_ndvi.tif
  seqpipe export bandwidth                  models/bandwidth/model.onnx, checked with onnxruntime

Stages are normally run by `dvc repro`; every hyperparameter lives in params.yaml.

exit codes:
""" + "\n".join(f"  {code:<4} {text}" for code, text in EXIT_CODES.items()) + """
An error is one line `seqpipe: error: <file or key>: <what is wrong>`; an unexpected one also names a
log file holding the traceback (--debug prints it instead)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seqpipe", description=__doc__, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"seqpipe {__version__}")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"), help="params file (default: params.yaml)")
    parser.add_argument("--debug", action="store_true", help="print the traceback of an unexpected error")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("list", help="list registered models")
    sub.add_parser("check-params", help="parse every section of params.yaml -> data/params.checked (the first "
                   "stage DVC runs: a bad value stops `dvc repro` before any output is deleted)")
    for stage, text in (("download", "fetch or generate raw data into data/raw/MODEL/"),
                        ("preprocess", "raw data -> train/val/test arrays in data/processed/MODEL/")):
        sub.add_parser(stage, help=text).add_argument("model")
    train = sub.add_parser("train", help="train MODEL -> models/MODEL/model.pt (resumes a matching checkpoint)")
    train.add_argument("model")
    mode = train.add_mutually_exclusive_group()
    mode.add_argument("--resume", action="store_true", help="require and resume this params set's checkpoint "
                      "(models/MODEL/checkpoints/FINGERPRINT/last.pt)")
    mode.add_argument("--fresh", action="store_true", help="delete this params set's checkpoints and start from scratch")
    mode.add_argument("--validate-only", action="store_true",
                      help="check params, data and network with one batch and a validation pass; write nothing")
    sub.add_parser("evaluate", help="test metrics and baselines -> metrics/MODEL.json, plots/MODEL/eval/"
                   ).add_argument("model")
    predict = sub.add_parser("predict", help="run a trained model on new input")
    predict.add_argument("model")
    predict.add_argument("--input", type=Path, help="input file or folder (format depends on the model)")
    predict.add_argument("--before", type=Path, help="ice_change: the earlier raster (t1)")
    predict.add_argument("--after", type=Path, help="ice_change: the later raster (t2), on the same grid")
    predict.add_argument("--output", type=Path, required=True, help="output file")
    predict.add_argument("--model-file", type=Path, help="model file (default: models/MODEL/model.pt); a "
                         "checkpoint of the run that wrote models/MODEL/model.pt works too")
    predict.add_argument("--force", action="store_true", help="write --output even over the model file, an input, "
                         "params.yaml, dvc.yaml/dvc.lock or a path DVC tracks")
    predict.add_argument("--trust-unverified", action="store_true",
                         help="load a model file that has no sha256 digest (its weights cannot be checked)")
    dvc_yaml = sub.add_parser("dvc-yaml", help="write dvc.yaml's stages from the model folders (deps = what each stage imports)")
    dvc_yaml.add_argument("--check", action="store_true", help="only check that dvc.yaml is up to date (exit 1 if not)")
    export = sub.add_parser("export", help="export MODEL to ONNX and check it against torch")
    export.add_argument("model")
    export.add_argument("--output", type=Path, help="default: models/MODEL/model.onnx")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging()
    try:
        return _dispatch(args)
    except SeqpipeError as exc:
        # Under DDP every rank raises the interrupt; rank 0 reports it (RANK is torchrun's variable).
        if os.environ.get("RANK", "0") == "0" or not getattr(exc, "rank0_reports", False):
            print(f"seqpipe: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("seqpipe: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the last resort: one line, the traceback in a file (or on stderr with --debug)
        return _unexpected(exc, args.debug)


def _unexpected(exc: Exception, debug: bool) -> int:
    """Report an exception no module turned into a SeqpipeError: an environment fault (disk full,
    read-only, permission) as one line with exit code 3, anything else as an internal error."""
    if debug:
        traceback.print_exc()
    known = environment_error(exc)
    if known is not None:
        print(f"seqpipe: error: {known}", file=sys.stderr)
        return known.exit_code
    where = "printed above" if debug else f"in {_crash_log(exc)}"
    print(f"seqpipe: error: internal error: {type(exc).__name__}: {first_line(exc)}; traceback {where}",
          file=sys.stderr)
    return 1


def _crash_log(exc: Exception) -> str:
    """Write the traceback to a new file in the system temp folder (never a DVC output); its path,
    or a hint to rerun with --debug when even that cannot be written."""
    try:
        fd, path = tempfile.mkstemp(prefix="seqpipe-crash-", suffix=".log")
        with os.fdopen(fd, "w") as fh:
            fh.write(f"seqpipe {__version__}: {' '.join(sys.argv)}\n")
            fh.write("".join(traceback.format_exception(exc)))
    except OSError:
        return "(not written: rerun with --debug)"
    return path


def _dispatch(args: argparse.Namespace) -> int:
    """Import only what the command needs: `list`, download and preprocess never load torch."""
    from seqpipe import numerics, pipelines
    from seqpipe.params import load_params

    if args.command == "dvc-yaml":
        from seqpipe import dvc_stages
        changed = dvc_stages.write(Path("dvc.yaml"), check=args.check)
        print("dvc.yaml " + ("written" if changed else "is up to date"))
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
    params = load_params(args.params, pipelines.names())
    # before numpy and torch load: they read the pinned kernels and thread counts when they do
    data_stage = args.command in ("download", "preprocess")
    threads = 1 if data_stage else numerics.threads_per_process(params.train(spec.name).num_threads)
    numerics.configure(params.numerics, threads)
    if not data_stage:
        numerics.configure_torch(params.numerics, threads)
    from seqpipe.io import check_writable

    if args.command in OUTPUT_FOLDERS:
        for folder in OUTPUT_FOLDERS[args.command](spec.name):
            check_writable(folder)
    if args.command == "download":
        from seqpipe.stages import download
        download.run(spec, params)
    elif args.command == "preprocess":
        from seqpipe.stages import preprocess
        preprocess.run(spec, params)
    elif args.command == "train":
        return _train(spec, params, args)
    elif args.command == "evaluate":
        from seqpipe.stages import evaluate
        evaluate.run(spec, params)
    elif args.command == "predict":
        from seqpipe.stages import predict
        print(predict.run(spec, params, args))
    elif args.command == "export":
        from seqpipe.stages.export import export_onnx
        report = export_onnx(spec.name, args.output)
        print(f"wrote {report['path']} ({report['bytes']} bytes); onnxruntime vs torch max abs diff "
              f"{report['max_abs_diff']:.3g} over {report['checked_samples']} test samples")
    return 0


def _train(spec: ModelSpec, params: Params, args: argparse.Namespace) -> int:
    """The train stage, launched under torchrun when nproc_per_node > 1; logs to models/MODEL/train.log."""
    from seqpipe import distributed
    from seqpipe.io import check_writable
    from seqpipe.stages import train

    # the sections the stage reads, parsed first: a bad key is one error line and nothing written (no train.log)
    params.section(spec.name, "model", spec.model_params)
    nproc = params.train(spec.name).nproc_per_node
    if not args.validate_only:
        check_writable(layout.model_dir(spec.name))
        if distributed.rank() != 0:  # under DDP, rank 0 alone logs
            logging.getLogger().setLevel(logging.WARNING)
        else:
            _log_to_file(layout.model_dir(spec.name) / "train.log")
        if nproc > 1 and distributed.world_size() == 1:
            from seqpipe.fit import select_device
            distributed.check_launch(spec.name, nproc, select_device(params.device))
            mode = ["--resume"] if args.resume else ["--fresh"] if args.fresh else []
            debug = ["--debug"] if args.debug else []
            return distributed.launch([*debug, "--params", str(args.params), "train", spec.name, *mode], nproc)
    mode = "resume" if args.resume else "fresh" if args.fresh else "auto"
    train.run(spec, params, resume=mode, validate_only=args.validate_only)
    return 0


LOG_FORMAT = "%(asctime)s %(levelname)s %(message)s"
# The folders each DVC stage writes into, checked before it starts (train's: in _train, after its params).
OUTPUT_FOLDERS = {"download": lambda m: [layout.raw_dir(m).parent],
                  "preprocess": lambda m: [layout.processed_dir(m).parent],
                  "evaluate": lambda m: [layout.metrics_file(m).parent, layout.eval_plots_dir(m).parent,
                                         layout.train_plots_dir(m).parent]}


def _setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, datefmt="%H:%M:%S",
                        handlers=[logging.StreamHandler(sys.stderr)], force=True)
    for noisy in ("dvclive", "matplotlib", "PIL", "rasterio"):  # rasterio logs GDAL errors at INFO
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
            print(f"seqpipe: warning: {self.baseFilename}: log file not written from here on "
                  f"({first_line(sys.exc_info()[1] or Exception())})", file=sys.stderr)


def _log_to_file(path: Path) -> None:
    """Training also logs to models/MODEL/train.log (appended across resumes)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = _FileLog(path)
    except OSError as exc:
        raise environment_error(exc, path) or SeqpipeError(f"{path}: cannot open ({first_line(exc)})") from exc
    handler.setFormatter(logging.Formatter(LOG_FORMAT, datefmt="%Y-%m-%d %H:%M:%S"))
    logging.getLogger().addHandler(handler)


if __name__ == "__main__":
    sys.exit(main())
