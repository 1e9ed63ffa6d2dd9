// Command manifest-append appends the JSON lines cas-put prints to per-track
// manifest files (docs/manifest.md).
package main

import "github.com/every-channel/ec-node/pkg/command"

func main() { command.Main(command.Binaries["manifest-append"]()) }
