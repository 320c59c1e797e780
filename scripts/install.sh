#!/usr/bin/env bash
# Install what a kpdata machine or worker needs: Mesa's headless EGL (apt-get, as root or through
# sudo), then the project. One script for a laptop, CI (.ci/run), a Dask worker and the worker
# image (Dockerfile).
#
#   scripts/install.sh            Mesa, then a virtual environment .venv in the repository root
#                                 with the project installed editable, with its test extras
#                                 (python3 -m venv .venv && .venv/bin/pip install -e ".[test]"),
#                                 its modules compiled to bytecode
#   scripts/install.sh --worker   Mesa, then the project into the current interpreter ($PYTHON,
#                                 default python3), no virtual environment, no test extras: a
#                                 worker image built on Beam's Python SDK image, or a cluster
#                                 node's own Python environment
#   --no-apt                      with either: skip apt-get (Mesa EGL already installed, or no
#                                 root: libegl1 libgl1 libgl1-mesa-dri must be present)
set -euo pipefail
usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2; exit "$1"; }

mode=venv apt=1
for arg in "$@"; do
  case "$arg" in
    --worker) mode=worker ;;
    --no-apt) apt=0 ;;
    -h|--help) usage 0 ;;
    *) echo "scripts/install.sh: unknown argument $arg" >&2; usage 2 ;;
  esac
done
cd "$(dirname "$0")/.."

if [ "$apt" = 1 ]; then
  if [ "$(id -u)" = 0 ]; then as_root=(); elif command -v sudo >/dev/null; then as_root=(sudo); else
    echo "scripts/install.sh: apt-get needs root and there is no sudo; install libegl1 libgl1" \
         "libgl1-mesa-dri as root, then rerun with --no-apt" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${as_root[@]}" apt-get update
  "${as_root[@]}" apt-get install -y libegl1 libgl1 libgl1-mesa-dri
  if [ "$mode" = worker ]; then "${as_root[@]}" rm -rf /var/lib/apt/lists/*; fi
fi

if [ "$mode" = venv ]; then
  python3 -m venv .venv
  .venv/bin/pip install -e ".[test]"
  # An editable install leaves the project's own modules uncompiled (pip compiles a regular
  # install's); where PYTHONDONTWRITEBYTECODE is set, as in many containers, every command would
  # compile them again (0.1 s a process here).
  .venv/bin/python -m compileall -q kpdata pipelines renderers schemas training >/dev/null
else
  "${PYTHON:-python3}" -m pip install --no-cache-dir .
fi
