#!/usr/bin/env bash
# Vendors hls.js into pkg/serve/web/vendor/ (embedded in ec-node by go:embed):
# only dist/hls.min.js and the LICENSE, from the npm registry's tarball,
# checked against the sha512 integrity the registry publishes for the version.
# Usage: scripts/vendor-hlsjs.sh  (needs npm; rerun to reproduce or bump VERSION)
set -euo pipefail

VERSION=1.7.4
INTEGRITY='sha512-3GlxGdPvT2YHvQYOt+yOzT/DEior/qJVNIylHA77kgeoBTdQQqi70GwefNEUmHQeNGyjC8U62+bruqW/Tpm+tg=='

repo=$(cd "$(dirname "$0")/.." && pwd)
dest=$repo/pkg/serve/web/vendor
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

(cd "$tmp" && npm pack --silent "hls.js@$VERSION" >/dev/null)
tgz=$tmp/hls.js-$VERSION.tgz
got="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
if [[ $got != "$INTEGRITY" ]]; then
	echo "vendor-hlsjs: $tgz has integrity $got, want $INTEGRITY" >&2
	exit 1
fi
tar -xzf "$tgz" -C "$tmp" package/dist/hls.min.js package/LICENSE
mkdir -p "$dest"
cp "$tmp/package/dist/hls.min.js" "$dest/hls.min.js"
cp "$tmp/package/LICENSE" "$dest/hls.js-LICENSE"
{
	echo "hls.js $VERSION from the npm registry (npm pack hls.js@$VERSION), $INTEGRITY"
	echo "files: dist/hls.min.js -> hls.min.js, LICENSE -> hls.js-LICENSE"
	(cd "$dest" && sha256sum hls.min.js hls.js-LICENSE)
} >"$dest/VERSION"
echo "vendor-hlsjs: hls.js $VERSION in $dest" >&2
