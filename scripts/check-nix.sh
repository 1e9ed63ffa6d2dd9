#!/usr/bin/env bash
# Checks the Nix side without nixpkgs (which this machine and CI do not have):
#   1. `nix-instantiate --parse` on every .nix file;
#   2. nixos/tests/eval.nix: the module evaluated with a STAND-IN lib
#      (nixos/tests/stub-lib.nix), asserting option defaults and the unit settings;
#   3. the units rendered by the real `ec-node systemd-units` from the module's
#      arguments, checked by `systemd-analyze verify`, with their
#      `systemd-analyze security` exposure printed;
#   4. nixos/package.nix's vendorHash against `go mod vendor` of this checkout.
# The NixOS VM test (nixos/tests/archive.nix) needs nixpkgs and KVM and is not run here.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v nix-instantiate >/dev/null; then
  echo "check-nix: installing nix-bin (Debian) for nix-instantiate" >&2
  if [ "$(id -u)" != 0 ]; then echo "check-nix: nix-instantiate missing and not root" >&2; exit 1; fi
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nix-bin >&2
fi
for tool in systemd-analyze python3 go nix-hash; do
  command -v "$tool" >/dev/null || { echo "check-nix: $tool is required" >&2; exit 1; }
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "== parse"
find . -name '*.nix' -not -path './.git/*' -print0 | sort -z | while IFS= read -r -d '' f; do
  nix-instantiate --parse "$f" >/dev/null
  echo "ok  $f"
done

echo "== module evaluation (stand-in lib)"
nix-instantiate --eval --strict --json nixos/tests/eval.nix >"$tmp/eval.json"
python3 -c 'import json,sys; [print("ok  " + n) for n in json.load(open(sys.argv[1]))["passed"]]' "$tmp/eval.json"

echo "== rendered units"
go build -o "$tmp/ec-node" ./cmd/ec-node
for which in plainArgs customArgs shardedArgs; do
  out="$tmp/units-$which"
  python3 -c 'import json,sys; sys.stdout.write("\0".join(json.load(open(sys.argv[1]))[sys.argv[2]]) + "\0")' \
    "$tmp/eval.json" "$which" >"$tmp/args"
  mapfile -d '' args <"$tmp/args"
  # Same arguments as the module; only the store paths are swapped for real ones.
  "$tmp/ec-node" systemd-units --write "$out" "${args[@]}" --ec-node "$tmp/ec-node" --systemctl "$(command -v systemctl)" >/dev/null
  # A template is verified through an instance; this one has a dash and a "|".
  ln -s "$out/ec-archive@.service" "$out/ec-archive@cdn.moq.dev-anon\\x7cla\\x2dnbc.service"
  verify=$(cd "$out" && systemd-analyze verify ./ec-archive@cdn.moq.dev-anon\\x7cla\\x2dnbc.service ./ec-archive-auto.service ./ec-archive.target 2>&1) || true
  if [ -n "$verify" ]; then
    echo "FAIL systemd-analyze verify ($which):" >&2
    echo "$verify" >&2
    exit 1
  fi
  echo "ok  systemd-analyze verify ($which)"
  for unit in "ec-archive@cdn.moq.dev-anon\\x7cla\\x2dnbc.service" ec-archive-auto.service; do
    score=$(cd "$out" && systemd-analyze security --offline=true "./$unit" 2>/dev/null | grep 'Overall exposure level' || true)
    echo "    $which ${score#→ }"
  done
done

echo "== archive-serve unit (nixos/serve.nix, rendered as NixOS would)"
python3 - "$tmp/eval.json" "$tmp/ec-node" >"$tmp/ec-archive-serve.service" <<'PY'
import json, sys
svc = json.load(open(sys.argv[1]))["serveService"]
print("[Unit]\nDescription=ec-node archive-serve\n\n[Service]")
for k, v in svc.items():
    for x in v if isinstance(v, list) else [v]:
        if isinstance(x, bool):
            x = "yes" if x else "no"
        print(f"{k}={x}".replace("/nix/store/stand-in-ec-node/bin/ec-node", sys.argv[2]))
print("\n[Install]\nWantedBy=multi-user.target")
PY
verify=$(cd "$tmp" && systemd-analyze verify ./ec-archive-serve.service 2>&1) || true
if [ -n "$verify" ]; then
  echo "FAIL systemd-analyze verify (ec-archive-serve.service):" >&2
  echo "$verify" >&2
  exit 1
fi
echo "ok  systemd-analyze verify (ec-archive-serve.service)"
score=$(cd "$tmp" && systemd-analyze security --offline=true ./ec-archive-serve.service 2>/dev/null | grep 'Overall exposure level' || true)
echo "    ${score#→ }"

echo "== vendorHash"
vendor="$tmp/vendor"
go mod vendor -o "$vendor"
hex=$(nix-hash --type sha256 "$vendor")
want="sha256-$(python3 -c 'import base64,sys; print(base64.b64encode(bytes.fromhex(sys.argv[1])).decode())' "$hex")"
have=$(sed -n 's/.*vendorHash = "\(.*\)";/\1/p' nixos/package.nix)
if [ "$have" != "$want" ]; then
  echo "FAIL nixos/package.nix vendorHash is $have; go mod vendor gives $want" >&2
  exit 1
fi
echo "ok  vendorHash $want"
