#!/usr/bin/env bash
# Time installing the pinned dependency set from an empty cache into a fresh virtual environment: pip, then uv
# (what the Makefile uses). Usage: scripts/install_benchmark.sh   (prints the seconds of each; leaves nothing behind)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
uv_version="$(sed -n 's/^UV_VERSION := //p' "$repo/Makefile")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$repo"
python3 -m venv "$work/pip-env"
start=$(date +%s.%N)
PIP_CACHE_DIR="$work/pip-cache" "$work/pip-env/bin/pip" install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]'
echo "pip: $(echo "$(date +%s.%N) - $start" | bc) s"
python3 -m venv "$work/uv-env"
PIP_CACHE_DIR="$work/pip-cache-uv" "$work/uv-env/bin/pip" install --quiet --disable-pip-version-check "uv==$uv_version"
start=$(date +%s.%N)
UV_CACHE_DIR="$work/uv-cache" "$work/uv-env/bin/uv" pip install --quiet --python "$work/uv-env/bin/python" -c constraints.txt -e '.[test]'
echo "uv $uv_version: $(echo "$(date +%s.%N) - $start" | bc) s"
# uv itself is in the second environment only
freeze() { "$1" -m pip freeze --exclude-editable --disable-pip-version-check | grep -v '^uv=='; }
if diff <(freeze "$work/pip-env/bin/python") <(freeze "$work/uv-env/bin/python"); then
  echo "same packages installed by both"
fi
