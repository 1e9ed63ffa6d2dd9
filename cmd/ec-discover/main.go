// Command ec-discover lists live MoQ broadcasts from the every.channel web
// directory or from a relay's announcements.
package main

import "github.com/every-channel/ec-node/pkg/command"

func main() { command.Main(command.Binaries["ec-discover"]()) }
