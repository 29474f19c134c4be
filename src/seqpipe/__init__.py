"""seqpipe: a DVC-run, data-versioned training pipeline for time-series and raster models."""

__version__ = "0.1.0"
