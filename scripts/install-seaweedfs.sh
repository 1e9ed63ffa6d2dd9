#!/usr/bin/env bash
# Builds the SeaweedFS `weed` binary the S3 end-to-end tests run as a real S3-compatible
# server, at the version pinned below, into a cache outside the checkout so that a second
# run is instant. `go install …/weed@VERSION` refuses SeaweedFS (its go.mod has replace
# directives), so the module is downloaded through the Go module proxy and built in a
# writable copy. About 4 minutes on 2 cores, once.
#
# Prints the path of the weed binary on its last line. Environment:
#   EC_SEAWEEDFS_DIR   cache root (default: $XDG_CACHE_HOME/ec-node or ~/.cache/ec-node)
set -euo pipefail

version=v0.0.0-20261109003541-7506e5f91cd6
cache=${EC_SEAWEEDFS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ec-node}
root="$cache/seaweedfs-$version"
bin="$root/weed"

if [ ! -x "$bin" ]; then
  echo "install-seaweedfs: building seaweedfs $version; this takes a few minutes once" >&2
  src=$(go mod download -json "github.com/seaweedfs/seaweedfs@$version" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  if [ -z "$src" ] || [ ! -d "$src" ]; then
    echo "install-seaweedfs: go mod download gave no module directory" >&2
    exit 1
  fi
  work="$root.partial"
  rm -rf "$work"
  mkdir -p "$work"
  cp -r "$src" "$work/src"
  chmod -R u+w "$work/src"
  (cd "$work/src" && go build -o "$work/weed" ./weed) >&2
  mkdir -p "$root"
  mv "$work/weed" "$bin"
  rm -rf "$work"
fi
echo "$bin"
