#!/usr/bin/env bash
# Prepare the real multilingual benchmark from Debian packages (see recipes/data/README.md).
#   recipes/data/prepare.sh --out DIR [--langs en,de,...] [--cache DIR] [--profile quick|full]
# Installs what preparation needs (groff-base, python3) through `.ci/setup --data` when missing,
# then runs prepare.py with the system Python (standard library only).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
if ! command -v groff >/dev/null || ! command -v dpkg-deb >/dev/null || ! command -v apt-get >/dev/null \
   || ! [[ -x /usr/bin/python3 || -n "${PYTHON:-}" ]]; then
  "$root/.ci/setup" --data
fi
py="${PYTHON:-/usr/bin/python3}"
exec "$py" "$here/prepare.py" "$@"
