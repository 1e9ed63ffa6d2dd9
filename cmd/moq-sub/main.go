// Command moq-sub subscribes to a broadcast on a MoQ relay and writes one record
// per received group to stdout (docs/record-framing.md).
package main

import "github.com/every-channel/ec-node/pkg/command"

func main() { command.Main(command.Binaries["moq-sub"]()) }
