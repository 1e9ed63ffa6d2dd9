package systemd

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Names of the units ec-node ships (see Render).
const (
	InstancePrefix = "ec-archive@"
	InstanceSuffix = ".service"
	AutoUnit       = "ec-archive-auto.service"
	TargetUnit     = "ec-archive.target"
)

// MaxUnitNameLen is the longest unit name systemd accepts: UNIT_NAME_MAX is 256
// including the terminating NUL.
const MaxUnitNameLen = 255

// keySeparator joins the relay part and the broadcast in a Key. It cannot occur
// in the relay part (a host name, or a path as url.URL.EscapedPath writes it,
// which percent-encodes "|"), so a Key splits unambiguously at its first "|".
const keySeparator = "|"

// hashedPrefix starts the instance names of keys too long to escape. An escaped
// key always contains `\x7c` (the escaped separator), a hashed name never does,
// so the two forms cannot collide.
const hashedPrefix = "hash-"

// Key is the identity of one archive worker: the relay's host and path, then
// "|", then the broadcast name, e.g. "cdn.moq.dev/anon|la-nbc". Scheme, query
// and fragment are left out so that tokens (?jwt=...) never appear in unit
// names, process lists or logs; the full relay URL travels in the instance's
// environment file instead.
func Key(relayURL, broadcast string) (string, error) {
	u, err := url.Parse(relayURL)
	if err != nil {
		return "", fmt.Errorf("relay URL: %w", err)
	}
	if u.Host == "" {
		return "", fmt.Errorf("relay URL %q has no host", relayURL)
	}
	if broadcast == "" {
		return "", errors.New("empty broadcast name")
	}
	relay := strings.ToLower(u.Host) + strings.TrimRight(u.EscapedPath(), "/")
	if strings.Contains(relay, keySeparator) { // unreachable for parsed URLs; guards the invariant
		return "", fmt.Errorf("relay URL %q: host contains %q", relayURL, keySeparator)
	}
	return relay + keySeparator + broadcast, nil
}

// SplitKey returns the relay part and the broadcast of a Key.
func SplitKey(key string) (relay, broadcast string, err error) {
	relay, broadcast, ok := strings.Cut(key, keySeparator)
	if !ok || relay == "" || broadcast == "" {
		return "", "", fmt.Errorf("malformed worker key %q", key)
	}
	return relay, broadcast, nil
}

// Instance returns the instance name for a Key: Escape(key) when the unit name
// fits MaxUnitNameLen, otherwise "hash-" and 32 hex digits of SHA-256(key). A
// hashed instance cannot be mapped back by itself; its key is in its
// environment file (EnvFile).
func Instance(key string) string {
	escaped := Escape(key)
	if len(UnitName(escaped)) <= MaxUnitNameLen {
		return escaped
	}
	sum := sha256.Sum256([]byte(key))
	return hashedPrefix + hex.EncodeToString(sum[:16])
}

// ParseInstance maps an instance name back to its Key. For a hashed instance it
// returns hashed=true and an empty key.
func ParseInstance(instance string) (key string, hashed bool, err error) {
	if rest, ok := strings.CutPrefix(instance, hashedPrefix); ok && len(rest) == 32 && isLowerHex(rest) {
		return "", true, nil
	}
	key, err = Unescape(instance)
	if err != nil {
		return "", false, err
	}
	if _, _, err := SplitKey(key); err != nil {
		return "", false, err
	}
	if Instance(key) != instance { // an escaped name longer than the limit is not ours
		return "", false, fmt.Errorf("instance %q is not the canonical name of its key", instance)
	}
	return key, false, nil
}

// UnitName is the unit of an instance: "ec-archive@<instance>.service".
func UnitName(instance string) string { return InstancePrefix + instance + InstanceSuffix }

// InstanceOfUnit returns the instance of an ec-archive@ unit name.
func InstanceOfUnit(unit string) (string, bool) {
	inst, ok := strings.CutPrefix(unit, InstancePrefix)
	if !ok {
		return "", false
	}
	inst, ok = strings.CutSuffix(inst, InstanceSuffix)
	return inst, ok && inst != ""
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if _, ok := hexVal(s[i]); !ok || s[i] >= 'A' && s[i] <= 'F' {
			return false
		}
	}
	return true
}
