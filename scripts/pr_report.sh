#!/usr/bin/env bash
# The pull-request report of the DVC project in the current folder: `seqpipe pr-report`, the markdown the
# pull-request workflow posts as its comment. Changed params; per model, its headline metrics at BASE and
# now with delta and a better/worse verdict beside its baselines (an untouched model is one line); each
# changed plot as PNGs in PLOTS_DIR (DVC's own Vega-Lite charts rendered by vl-convert, image plots as they
# are), embedded with relative links, and PLOTS_DIR/index.html, the offline `seqpipe report BASE` page.
#
#   scripts/pr_report.sh [--noise FRACTION] BASE [PLOTS_DIR]     e.g. scripts/pr_report.sh main > report.md
#
# PLOTS_DIR defaults to dvc_plots; --noise (default 0.005, i.e. 0.5%): a metric that moved by no more than
# this fraction of its BASE value reads "same". A wrong argument is one line on stderr and exit code 2.
# `seqpipe pr-report --help` says the rest.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
seqpipe=$(command -v seqpipe || echo "$here/../.venv/bin/seqpipe")
[[ -x $seqpipe ]] || { echo "pr_report.sh: seqpipe not found (run 'make venv' and 'source .venv/bin/activate')" >&2
                       exit 2; }
exec "$seqpipe" pr-report "$@"
