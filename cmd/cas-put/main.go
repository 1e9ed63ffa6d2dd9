// Command cas-put stores files, or the payloads of a record stream, in the BLAKE3
// content-addressed store (docs/record-framing.md, docs/manifest.md).
package main

import "github.com/every-channel/ec-node/pkg/command"

func main() { command.Main(command.Binaries["cas-put"]()) }
