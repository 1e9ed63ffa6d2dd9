// Command ec-node is the all-in-one archiver binary: wt-archive, archive-auto and
// every pipeline stage as a subcommand. See `ec-node --help` and README.md.
package main

import "github.com/every-channel/ec-node/pkg/command"

func main() { command.Main(command.Binaries["ec-node"]()) }
