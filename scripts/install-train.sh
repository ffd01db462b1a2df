#!/usr/bin/env bash
# Install the `train` extra (AutoScientist training, docs/autoscientist.md) into the venv `make install` builds.
#   TRAIN=1     always (on Linux, PyPI's torch is the CUDA build: about 2.7 GB with its NVIDIA libraries)
#   TRAIN=0     never
#   TRAIN=auto  only when pip, as configured on this machine (find-links, an internal index), resolves a
#               CPU-only torch, so a development install never downloads the CUDA libraries by surprise
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
TORCH=${TORCH:-torch==2.13.0}

install() { "$PY" -m pip install --quiet -e '.[train]' "$TORCH"; }

case "${TRAIN:-auto}" in
    0) echo "train extra: skipped (TRAIN=0)"; exit 0 ;;
    1) install; exit 0 ;;
    auto) ;;
    *) echo "TRAIN must be 0, 1 or auto, got ${TRAIN}" >&2; exit 2 ;;
esac

report=$(mktemp)
trap 'rm -f "$report"' EXIT
"$PY" -m pip install --quiet --dry-run --ignore-installed --report "$report" "$TORCH" >/dev/null
if "$PY" - "$report" <<'PYTHON'
import json
import sys

names = [item["metadata"]["name"].lower() for item in json.load(open(sys.argv[1]))["install"]]
sys.exit(1 if any(name.startswith(("nvidia-", "cuda-", "triton")) for name in names) else 0)
PYTHON
then
    install
else
    echo "train extra: skipped: pip would install the CUDA build of torch here (about 2.7 GB)." \
        "Install a CPU torch first (docs/autoscientist.md), or run make install TRAIN=1"
fi
