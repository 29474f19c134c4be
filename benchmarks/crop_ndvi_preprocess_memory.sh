#!/usr/bin/env bash
# Peak RSS of `seqpipe preprocess crop_ndvi` on synthetic stacks of growing size (36 dates each).
# Run from the repository root with the venv on PATH; results: crop_ndvi_preprocess_memory.md.
set -euo pipefail
root=$(pwd)
work=$(mktemp -d)
for size in ${SIZES:-64 256 512 1024}; do
  mkdir -p "$work/s$size"
  python - "$root/params.yaml" "$work/s$size/params.yaml" "$size" <<'PY'
import sys, yaml
raw = yaml.safe_load(open(sys.argv[1]))
raw["models"]["crop_ndvi"]["download"]["synthetic"].update(width=int(sys.argv[3]), height=int(sys.argv[3]))
yaml.safe_dump(raw, open(sys.argv[2], "w"), sort_keys=False)
PY
  (cd "$work/s$size" && seqpipe download crop_ndvi 2>/dev/null \
     && /usr/bin/time -f "$size x $size: %e s, peak RSS %M KB" seqpipe preprocess crop_ndvi 2>&1 | tail -1)
done
rm -rf "$work"
