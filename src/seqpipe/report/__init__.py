"""The reports of DVC's plots, metrics and params, one code path for two readers:

- `seqpipe report [REV...]` (page.py): one self-contained HTML page that opens offline;
- `seqpipe pr-report BASE` (markdown.py): the pull-request comment, with verdicts and changed plots as PNGs.

Both read DVC once through collect.py (dvc_json.py runs DVC, plots.py and metrics.py hold what a plot
and a metric are to a report). Nothing here is a dep of a DVC stage, and nothing loads torch.
"""
