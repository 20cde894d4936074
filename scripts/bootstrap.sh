#!/usr/bin/env bash
# Set up everything twilight-ops needs on a fresh Debian machine:
# the Debian packages the staging twin uses (when missing and running as root)
# and a venv with the package and its test extra.  Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

DEB_PKGS=(openssh-server docker.io docker-registry debootstrap iproute2 libfaketime python3-venv)
missing=()
for p in "${DEB_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]]; then
    echo "bootstrap: installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "bootstrap: missing Debian packages: ${missing[*]}" >&2
    echo "bootstrap: run 'sudo apt-get install -y ${missing[*]}' and try again" >&2
    exit 2
  fi
fi

# The interpreter: $PYTHON, else Debian's /usr/bin/python3 when it is 3.11 or newer, else python3 on PATH.
# Debian builds its Python with PGO and LTO; this kind of machine's default python3 is a pyenv build
# without --enable-optimizations.  Measured here: a pure-Python loop twice as fast, a Hermes chat
# 3.4 → 3.0 s of CPU, `inv --list` 0.27 → 0.20 s; every `inv`, Hermes chat and twin stand-in is Python
# (docs/roadmap.md, "CI time").
if [[ -n ${PYTHON:-} ]]; then
  PY=$PYTHON
  if ! "$PY" -c 'import sys, venv; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "bootstrap: PYTHON=$PY is not a Python 3.11+ with venv: set PYTHON to one (e.g. /usr/bin/python3) or unset it" >&2
    exit 2
  fi
elif /usr/bin/python3 -c 'import sys, ensurepip, venv; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  PY=/usr/bin/python3
else
  PY=python3
fi
want_home=$(dirname "$("$PY" -c 'import os, sys; print(os.path.realpath(sys.executable))')")
if [[ -x .venv/bin/python && -f .venv/pyvenv.cfg ]]; then
  have_home=$(sed -n 's/^home *= *//p' .venv/pyvenv.cfg)
  if [[ $(realpath -m "$have_home") != $(realpath -m "$want_home") ]]; then
    echo "bootstrap: .venv was made by $have_home/python, not $want_home: making it again"
    rm -rf .venv
  fi
fi
if [[ ! -x .venv/bin/python ]]; then
  echo "bootstrap: creating .venv ($PY)"
  "$PY" -m venv .venv
fi
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [[ ! -e $stamp ]]; then
  echo "bootstrap: installing twilight-ops and its test extra into .venv"
  # quiet on success: pip's own lines, this machine's pip.conf notes and setuptools' editable-install
  # banner go to a log that is shown only when the install fails
  log=.venv/bootstrap-pip.log
  if ! { .venv/bin/pip install -q --upgrade pip && .venv/bin/pip install -q -e '.[test]'; } >"$log" 2>&1; then
    grep -v "is ignored: it is neither" "$log" >&2 || true
    echo "bootstrap: pip install failed (full output: $log)" >&2
    exit 1
  fi
  .venv/bin/python -c "import twilight_ops, fabric, duckdb, jsonschema, compose" \
    || { echo "bootstrap: the venv install failed (see above)" >&2; exit 1; }
  rm -f .venv/.installed-*
  touch "$stamp"
fi

# The package's bytecode, written even where PYTHONDONTWRITEBYTECODE is set (Python still reads it):
# without it every `inv` compiles twilight_ops' sources again (≈ 0.1 s of `inv --list`, issue 22).
# Quick when nothing changed (compileall compares each source's mtime with its .pyc).
.venv/bin/python -m compileall -q -j 0 twilight_ops tasks.py >/dev/null
