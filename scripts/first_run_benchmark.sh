#!/usr/bin/env bash
# Time a new user's first `make run`: fresh clone, empty pip cache, until the chat app answers on its port.
# Usage: scripts/first_run_benchmark.sh [PORT]   (prints the seconds to a working chat; leaves nothing running)
set -euo pipefail
port="${1:-8765}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
# RUN_LOG=path keeps a copy of make run's output (with its timestamps) for a breakdown of the steps.
trap 'kill -- -$pid 2>/dev/null || true; sleep 2; [ -n "${RUN_LOG:-}" ] && cp "$work/run.log" "$RUN_LOG"; rm -rf "$work"' EXIT
git clone --quiet "$repo" "$work/clone"
cd "$work/clone"
export PIP_CACHE_DIR="$work/pip-cache"   # empty: every package is downloaded again
export UV_CACHE_DIR="$work/uv-cache"     # the same for uv, which installs them (Makefile)
export LLAMA_WHEELS="$work/llama-wheels"  # empty: the background model install compiles llama.cpp again
start=$(date +%s)
setsid make run PORT="$port" > "$work/run.log" 2>&1 &
pid=$!
# Working chat = the app logged that its engine is built and warm, and its page is served.
until grep -q "Policy Lab Assistant ready" "$work/run.log" && curl -fsS "http://127.0.0.1:$port/" >/dev/null 2>&1; do
  if ! kill -0 "$pid" 2>/dev/null; then echo "make run exited early:"; tail -30 "$work/run.log"; exit 1; fi
  sleep 2
done
end=$(date +%s)
echo "first make run → chat ready after $((end - start)) s (fresh clone, empty pip cache, no llama.cpp build cached)"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (above ~2.5 on 2 cores the figure is disturbed)"
grep -E "indexed|unchanged|failed\." "$work/run.log" | tail -2 || true
