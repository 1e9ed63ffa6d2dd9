#!/usr/bin/env bash
# Installs the real peers the end-to-end tests use: moq-relay and moq-cli (binary `moq`)
# at the versions pinned in scripts/peers.env, built with `cargo install --locked` into a
# cache outside the checkout so that a second run is instant; and ffmpeg/ffprobe from Debian.
#
# Prints the peer bin directory on its last line. Environment:
#   EC_PEERS_DIR   cache root (default: $XDG_CACHE_HOME/ec-node/peers or ~/.cache/ec-node/peers)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=peers.env
. "$here/peers.env"

cache=${EC_PEERS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ec-node/peers}
mkdir -p "$cache"

install_crate() { # crate version features binary
  local crate=$1 version=$2 features=$3 bin=$4
  local root="$cache/$crate-$version-$features"
  if [ -x "$root/bin/$bin" ]; then
    return 0
  fi
  echo "install-peers: building $crate $version (features: $features); this takes a while once" >&2
  CARGO_TARGET_DIR="$cache/target" cargo install --locked --quiet --root "$root.partial" \
    --no-default-features --features "$features" "$crate" --version "=$version" >&2
  rm -rf "$root"
  mv "$root.partial" "$root"
}

if ! command -v ffmpeg >/dev/null || ! command -v ffprobe >/dev/null; then
  echo "install-peers: installing ffmpeg from Debian" >&2
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >&2
  else
    echo "install-peers: ffmpeg missing and not root; install it (apt-get install ffmpeg)" >&2
    exit 1
  fi
fi

install_crate moq-relay "$MOQ_RELAY_VERSION" "$MOQ_RELAY_FEATURES" moq-relay
install_crate moq-cli "$MOQ_CLI_VERSION" "$MOQ_CLI_FEATURES" moq

bin="$cache/bin-$MOQ_RELAY_VERSION-$MOQ_CLI_VERSION"
mkdir -p "$bin"
ln -sf "$cache/moq-relay-$MOQ_RELAY_VERSION-$MOQ_RELAY_FEATURES/bin/moq-relay" "$bin/moq-relay"
ln -sf "$cache/moq-cli-$MOQ_CLI_VERSION-$MOQ_CLI_FEATURES/bin/moq" "$bin/moq"
echo "$bin"
