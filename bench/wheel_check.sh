#!/usr/bin/env bash
# Issue 13 item 4's done-when check: the wheel carries the compiled kernels and runs the fast
# path where no C compiler can be found and HOME is empty and read-only.
#
#   bench/wheel_check.sh              # from the repository root; about 5-10 minutes on 2 cores
#
# 1. pip wheel . -w dist --no-deps: the wheel must be a platform wheel holding lstmae/_kernels*.
# 2. A fresh venv ($WHEEL_VENV, default /tmp/whl-venv) installs it with constraints.txt.
# 3. With CC=false and an empty read-only HOME: `lstmae info` must say "built at install",
#    and the seed-configuration fit (bench/perf.py --worker fit) runs there and in the dev
#    checkout ($DEV_PYTHON with PYTHONPATH=src), alternating, $ROUNDS rounds each: windows/s side by side.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
DEV_PY=${DEV_PYTHON:-.venv/bin/python}
VENV=${WHEEL_VENV:-/tmp/whl-venv}
ROUNDS=${ROUNDS:-2}
BATCH=${BATCH:-32}

rm -rf dist
"$PY" -m pip wheel . -w dist --no-deps -q
wheel=$(ls dist/lstmae-*.whl)
echo "wheel: $(basename "$wheel")"
case "$wheel" in *-none-any.whl) echo "wheel_check: error: a pure wheel, the kernels were not built" >&2; exit 1 ;; esac
unzip -l "$wheel" | grep -q "lstmae/_kernels" || { echo "wheel_check: error: no lstmae/_kernels in the wheel" >&2; exit 1; }

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check -c constraints.txt "$wheel"
"$VENV/bin/pip" install -q --disable-pip-version-check --force-reinstall --no-deps "$wheel"  # this build, even at the same version

home=$(mktemp -d)
chmod 555 "$home"
isolated() { (cd /tmp && env -u PYTHONPATH HOME="$home" CC=false XDG_CACHE_HOME= "$@"); }
info=$(isolated "$VENV/bin/lstmae" info)
echo "$info"
grep -q "^kernels: built at install" <<<"$info" || { echo "wheel_check: error: the installed kernels are not in use" >&2; exit 1; }
grep -q "$VENV" <<<"$info" || { echo "wheel_check: error: lstmae was not imported from $VENV" >&2; exit 1; }

perf=$(pwd)/bench/perf.py
for round in $(seq "$ROUNDS"); do
  wheel_fit=$(isolated "$VENV/bin/python" "$perf" --worker fit --batch "$BATCH" --threads 2 --epochs 3 | tail -1)
  dev_fit=$(PYTHONPATH=src "$DEV_PY" "$perf" --worker fit --batch "$BATCH" --threads 2 --epochs 3 | tail -1)
  rate() { "$PY" -c 'import json, sys; print(f"{json.loads(sys.argv[1])[\"windows_per_s\"]:,.0f}")' "$1"; }
  echo "round $round, seed fit batch $BATCH, 2 threads: wheel venv (CC=false, read-only HOME) $(rate "$wheel_fit") windows/s, dev checkout $(rate "$dev_fit") windows/s"
done
chmod 755 "$home" && rmdir "$home"
