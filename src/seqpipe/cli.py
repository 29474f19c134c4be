"""`seqpipe`: the stages DVC runs, plus list, predict and export. Configuration comes from params.yaml."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from seqpipe import SeqpipeError, __version__, layout

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

Stages are normally run by `dvc repro`; every hyperparameter lives in params.yaml."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seqpipe", description=__doc__, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"seqpipe {__version__}")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"), help="params file (default: params.yaml)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("list", help="list registered models")
    for stage, text in (("download", "fetch or generate raw data into data/raw/MODEL/"),
                        ("preprocess", "raw data -> train/val/test arrays in data/processed/MODEL/")):
        sub.add_parser(stage, help=text).add_argument("model")
    train = sub.add_parser("train", help="train MODEL -> models/MODEL/model.pt (resumes a matching checkpoint)")
    train.add_argument("model")
    mode = train.add_mutually_exclusive_group()
    mode.add_argument("--resume", action="store_true", help="require and resume models/MODEL/checkpoints/last.pt")
    mode.add_argument("--fresh", action="store_true", help="delete checkpoints and start from scratch")
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
    predict.add_argument("--model-file", type=Path, help="model file (default: models/MODEL/model.pt)")
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
        from seqpipe.distributed import rank
        from seqpipe.train import TrainingInterrupted
        if rank() == 0 or not isinstance(exc, TrainingInterrupted):  # rank 0 reports the interrupt
            print(f"seqpipe: error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", 1)
    except KeyboardInterrupt:
        print("seqpipe: interrupted", file=sys.stderr)
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    from seqpipe import registry
    from seqpipe.params import load_params

    if args.command == "list":
        width = max(len(s.task) for s in registry.MODELS.values()) + 2
        for spec in registry.MODELS.values():
            print(f"{spec.name:<14} {spec.task:<{width}} {spec.summary}")
        return 0
    spec = registry.get(args.model)
    params = load_params(args.params)
    if args.command == "train" and not args.validate_only:
        from seqpipe import distributed
        if distributed.rank() != 0:  # under DDP, rank 0 alone logs
            logging.getLogger().setLevel(logging.WARNING)
        else:
            _log_to_file(layout.model_dir(spec.name) / "train.log")
        nproc = params.model(spec.name).train.nproc_per_node
        if nproc > 1 and distributed.world_size() == 1:
            from seqpipe.train import select_device
            distributed.check_launch(spec.name, nproc, select_device(params.device))
            mode = ["--resume"] if args.resume else ["--fresh"] if args.fresh else []
            return distributed.launch(["--params", str(args.params), "train", spec.name, *mode], nproc)
    if args.command == "download":
        from seqpipe.sources import run_download
        run_download(spec.name, params)
    elif args.command == "preprocess":
        from seqpipe.preprocess import run_preprocess
        run_preprocess(spec.name, params)
    elif args.command == "train":
        from seqpipe.train_stage import run_train
        mode = "resume" if args.resume else "fresh" if args.fresh else "auto"
        run_train(spec.name, params, resume=mode, validate_only=args.validate_only)
    elif args.command == "evaluate":
        from seqpipe.evaluate import run_evaluate
        run_evaluate(spec.name, params.model(spec.name), params.seed, spec.evaluate)
    elif args.command == "predict":
        from seqpipe import checkpoint
        if spec.predict is None:
            raise SeqpipeError(f"model {spec.name!r} has no predict command")
        for given in (args.input, args.before, args.after):
            if given is not None and not given.exists():
                raise SeqpipeError(f"{given}: not found")
        network, payload = checkpoint.load_model(args.model_file or layout.model_file(spec.name), spec.name)
        out = spec.predict(network, payload, args)
        print(f"wrote {out}")
    elif args.command == "export":
        from seqpipe.export import export_onnx
        report = export_onnx(spec.name, args.output)
        print(f"wrote {report['path']} ({report['bytes']} bytes); onnxruntime vs torch max abs diff "
              f"{report['max_abs_diff']:.3g} over {report['checked_samples']} test samples")
    return 0


LOG_FORMAT = "%(asctime)s %(levelname)s %(message)s"


def _setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, datefmt="%H:%M:%S",
                        handlers=[logging.StreamHandler(sys.stderr)], force=True)
    for noisy in ("dvclive", "matplotlib", "PIL", "rasterio"):  # rasterio logs GDAL errors at INFO
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _log_to_file(path: Path) -> None:
    """Training also logs to models/MODEL/train.log (appended across resumes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter(LOG_FORMAT, datefmt="%Y-%m-%d %H:%M:%S"))
    logging.getLogger().addHandler(handler)


if __name__ == "__main__":
    sys.exit(main())
