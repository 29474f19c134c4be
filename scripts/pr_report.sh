#!/usr/bin/env bash
# Markdown report of what the workspace changes against BASE (a git revision), from the DVC project in
# the current folder: changed params; per model, its headline metrics at BASE and now with delta and a
# better/worse verdict beside its baselines (an untouched model is one line); each changed plot drawn
# base against PR as a PNG in PLOTS_DIR and embedded. The pull-request workflow posts it as a comment.
#
#   scripts/pr_report.sh [--noise FRACTION] BASE [PLOTS_DIR]     e.g. scripts/pr_report.sh main > report.md
#
# PLOTS_DIR (default dvc_plots) receives the PNGs the report links (relative paths) and every plot,
# BASE against the workspace, as HTML (index.html). --noise (default 0.005, i.e. 0.5%): a metric that
# moved by no more than this fraction of its BASE value reads "same". The logic is scripts/pr_report.py.
set -euo pipefail

die() { echo "pr_report.sh: $*" >&2; exit 2; }
usage="usage: scripts/pr_report.sh [--noise FRACTION] BASE [PLOTS_DIR]"

noise=0.005
positional=()
while [[ $# -gt 0 ]]; do
    case $1 in
        --noise) [[ $# -ge 2 ]] || die "--noise needs a value ($usage)"; noise=$2; shift 2 ;;
        --noise=*) noise=${1#--noise=}; shift ;;
        -h|--help) sed -n '2,10s/^# \{0,1\}//p' "$0"; exit 0 ;;
        -*) die "unknown option '$1' ($usage)" ;;
        *) positional+=("$1"); shift ;;
    esac
done
[[ ${#positional[@]} -ge 1 && ${#positional[@]} -le 2 && -n ${positional[0]} ]] || die "$usage"
base=${positional[0]}
plots_dir=${positional[1]:-dvc_plots}
[[ $noise =~ ^(0|0?\.[0-9]+)$ ]] || die "--noise '$noise' is not a fraction in [0, 1) (e.g. 0.005 for 0.5%)"
command -v dvc >/dev/null || die "dvc not found on PATH (run 'make venv' and 'source .venv/bin/activate')"
python=$(dirname "$(command -v dvc)")/python   # the interpreter dvc runs in: it has matplotlib too
[[ -x $python ]] || python=$(command -v python3) || die "python3 not found on PATH"
git rev-parse --is-inside-work-tree >/dev/null 2>&1 || die "$PWD is not a git repository"
git rev-parse --verify --quiet "$base^{commit}" >/dev/null \
    || die "BASE '$base' is not a commit in this repository (a branch from a remote needs 'git fetch' first)"
[[ -f dvc.yaml ]] || die "no dvc.yaml in $PWD (run from the project root)"

exec "$python" "$(dirname "$0")/pr_report.py" "$base" "$plots_dir" --noise "$noise"
