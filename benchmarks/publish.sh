#!/usr/bin/env bash
# Copy the committable part of run folders (tables and the Markdown report; not the HTML with its
# photo thumbnails, not the per-image scores) into benchmarks/results/<suite>/.
# Usage: bash benchmarks/publish.sh runs/niccage runs/lfw-identity ...
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
for run in "$@"; do
  name="$(basename "$run")"
  dest="$here/results/$name"
  mkdir -p "$dest"
  for f in results.csv run.json report.md audit.csv failures.csv; do
    [ -f "$run/$f" ] && cp "$run/$f" "$dest/$f"
  done
  echo "published $run -> $dest"
done
