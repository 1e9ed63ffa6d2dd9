#!/usr/bin/env bash
# Installs aiomoqt, an independent Python implementation of IETF moq-transport draft-14,
# into a virtualenv outside the checkout (cached: a second run is instant). The e2e test
# TestAiomoqt runs internal/peers/aiomoqt_pub.py with it (docs/moq.md, "Second
# implementation").
#
# Prints the venv directory on its last line. Environment:
#   EC_AIOMOQT_VENV   venv directory (default: $XDG_CACHE_HOME/ec-node/aiomoqt-venv or
#                     ~/.cache/ec-node/aiomoqt-venv)
#   PYTHON            interpreter to build it with (default: python3; 3.11 or newer, as
#                     aiomoqt uses asyncio.timeout)
set -euo pipefail

# Every distribution pinned. qh3 stays on 1.9: aiomoqt 0.5.3 asks for qh3>=1.7 but
# imports qh3.quic.packet_builder, which qh3 2.x no longer has.
requirements=(
  aiomoqt==0.5.3
  qh3==1.9.4
  certifi==2026.10.19.post1
  sortedcontainers==2.4.0
  asyncio==4.0.0 # aiomoqt lists the PyPI backport; the standard library's still wins
)

venv=${EC_AIOMOQT_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/ec-node/aiomoqt-venv}
python=${PYTHON:-python3}
stamp="$venv/ec-node-requirements.txt"
wanted=$(printf '%s\n' "${requirements[@]}")

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ] && "$venv/bin/python" -c 'import aiomoqt.client' 2>/dev/null; then
  echo "$venv"
  exit 0
fi

if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "install-aiomoqt: $python is older than 3.11 (aiomoqt needs asyncio.timeout)" >&2
  exit 1
fi
echo "install-aiomoqt: creating $venv" >&2
rm -rf "$venv.partial"
"$python" -m venv "$venv.partial" >&2
"$venv.partial/bin/pip" install --quiet --disable-pip-version-check --no-deps "${requirements[@]}" >&2
"$venv.partial/bin/python" -c 'import aiomoqt.client' >&2
printf '%s\n' "$wanted" >"$venv.partial/ec-node-requirements.txt"
rm -rf "$venv"
mv "$venv.partial" "$venv"
echo "$venv"
