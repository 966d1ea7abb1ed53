#!/usr/bin/env bash
# Creates (or reuses) the project's virtualenv outside the repository, keyed by the
# hash of requirements/*.txt, and links it as .venv. The venv is made from Debian's
# /usr/bin/python3.11 because Triton's python-backend stub must load a libpython that
# matches the interpreter (see shared/reference/real-components.md).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cache="${AUTOLABEL_VENV_CACHE:-$HOME/.cache/autolabel-operator}"
python="${AUTOLABEL_PYTHON:-/usr/bin/python3.11}"
if [ ! -x "$python" ] || ! "$python" -c 'import venv, ensurepip' 2>/dev/null; then
  apt-get update -qq && apt-get install -y -qq python3.11 python3.11-venv libpython3.11 >/dev/null
fi
key="$(cat "$root"/requirements/*.txt | sha256sum | cut -c1-12)"
venv="$cache/venv-$key"
if [ ! -f "$venv/.complete" ]; then
  echo "creating virtualenv $venv" >&2
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip
  "$venv/bin/pip" install -q -r "$root/requirements/lock.txt"
  # facenet-pytorch pins an old torch; its code works with the locked one.
  "$venv/bin/pip" install -q --no-deps -r "$root/requirements/nodeps.txt"
  touch "$venv/.complete"
fi
ln -sfn "$venv" "$root/.venv"
echo "$venv"
