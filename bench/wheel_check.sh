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
#    checkout ($DEV_PYTHON with PYTHONPATH=src), with the kernels and through nn.LSTM (the
#    fallback's speed), alternating, $ROUNDS rounds each: windows/s side by side.
# As root, mode bits do not stop writes: the installed side then runs as nobody (setpriv).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
DEV_PY=${DEV_PYTHON:-.venv/bin/python}
VENV=${WHEEL_VENV:-/tmp/whl-venv}
ROUNDS=${ROUNDS:-2}
BATCH=${BATCH:-32}
THREADS=${THREADS:-2}

rm -rf dist
"$PY" -m pip wheel . -w dist --no-deps -q
wheel=$(ls dist/lstmae-*.whl)
echo "wheel: $(basename "$wheel")"
case "$wheel" in *-none-any.whl) echo "wheel_check: error: a pure wheel, the kernels were not built" >&2; exit 1 ;; esac
unzip -Z1 "$wheel" | grep "lstmae/_kernels" || { echo "wheel_check: error: no lstmae/_kernels in the wheel" >&2; exit 1; }

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check -c constraints.txt "$wheel"
"$VENV/bin/pip" install -q --disable-pip-version-check --force-reinstall --no-deps "$wheel"  # this build, even at the same version

home=$(mktemp -d)
chmod 555 "$home"
# root writes through any mode bits: as root, run the installed side as nobody so HOME really is read-only
as_user=()
if [ "$(id -u)" = 0 ] && command -v setpriv > /dev/null; then as_user=(setpriv --reuid=65534 --regid=65534 --clear-groups); fi
isolated() { (cd /tmp && env -u PYTHONPATH -u XDG_CACHE_HOME -u LSTMAE_KERNELS HOME="$home" CC=false "${as_user[@]}" "$@"); }
if isolated sh -c 'touch "$HOME/probe"' 2> /dev/null; then echo "wheel_check: error: HOME is writable" >&2; exit 1; fi
info=$(isolated "$VENV/bin/lstmae" info)
echo "$info"
grep -q "^kernels: built at install" <<<"$info" || { echo "wheel_check: error: the installed kernels are not in use" >&2; exit 1; }
grep -q "$VENV" <<<"$info" || { echo "wheel_check: error: lstmae was not imported from $VENV" >&2; exit 1; }

perf=$(pwd)/bench/perf.py
for round in $(seq "$ROUNDS"); do
  wheel_fit=$(isolated "$VENV/bin/python" "$perf" --worker fit --batch "$BATCH" --threads "$THREADS" --epochs 3 | tail -1)
  dev_fit=$(PYTHONPATH=src "$DEV_PY" "$perf" --worker fit --batch "$BATCH" --threads "$THREADS" --epochs 3 | tail -1)
  slow_fit=$(PYTHONPATH=src "$DEV_PY" "$perf" --worker fit --batch "$BATCH" --threads "$THREADS" --epochs 3 --variant nn_lstm | tail -1)
  rate() { "$PY" -c 'import json, sys; print(format(json.loads(sys.argv[1])["windows_per_s"], ",.0f"))' "$1"; }
  echo "round $round, seed fit batch $BATCH, $THREADS thread(s), windows/s: wheel venv (CC=false, read-only HOME) $(rate "$wheel_fit")," \
       "dev checkout $(rate "$dev_fit"), dev checkout through nn.LSTM (the fallback) $(rate "$slow_fit")"
done
rmdir "$home"  # fails (set -e) if anything was written there
