#!/usr/bin/env bash
# Markdown report of what the workspace changes against BASE (a git revision): params, metrics and
# plots, from the DVC project in the current folder. The pull-request workflow posts it as a comment.
#
#   scripts/pr_report.sh BASE [PLOTS_DIR]     e.g. scripts/pr_report.sh main > report.md
#
# PLOTS_DIR (default dvc_plots) receives `dvc plots diff BASE` rendered as HTML (index.html).
set -euo pipefail

die() { echo "pr_report.sh: $*" >&2; exit 2; }

# print the markdown table a command prints, or $1 when it has no rows (dvc prints a bare header)
table_or() {
    local none=$1 table
    shift
    table=$("$@")
    if [[ $(grep -c '^|' <<<"$table") -gt 2 ]]; then echo "$table"; else echo "$none"; fi
}

[[ $# -ge 1 && $# -le 2 && -n $1 ]] || die "usage: scripts/pr_report.sh BASE [PLOTS_DIR]"
base=$1
plots_dir=${2:-dvc_plots}
command -v dvc >/dev/null || die "dvc not found on PATH (run 'make venv' and 'source .venv/bin/activate')"
git rev-parse --is-inside-work-tree >/dev/null 2>&1 || die "$PWD is not a git repository"
git rev-parse --verify --quiet "$base^{commit}" >/dev/null \
    || die "BASE '$base' is not a commit in this repository (a branch from a remote needs 'git fetch' first)"
[[ -f dvc.yaml ]] || die "no dvc.yaml in $PWD (run from the project root)"

echo "## DVC report: workspace at $(git rev-parse --short HEAD) against \`$base\` ($(git rev-parse --short "$base"))"
echo
echo "### Params"
echo
table_or "No params changed." dvc params diff "$base" --md
echo
echo "### Metrics"
echo
table_or "No metrics changed." dvc metrics diff "$base" --md
echo
echo "### Plots"
echo
dvc plots diff "$base" -o "$plots_dir" >/dev/null
dvc plots diff "$base" -o "$plots_dir" --json | python3 "$(dirname "$0")/changed_plots.py" "$base"
echo
echo "All plots, \`$base\` against the workspace: \`$plots_dir/index.html\` (\`dvc plots diff $base -o $plots_dir\`)."
