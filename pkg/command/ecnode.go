package command

import "github.com/urfave/cli/v2"

// Binaries builds the app of each binary under cmd/, by name: cmd/<name> runs
// Binaries[name](). The contract tests walk it, so no binary escapes them.
var Binaries = map[string]func() *cli.App{
	"ec-node":         ECNode,
	"moq-sub":         func() *cli.App { return NewApp("moq-sub", "", MoQSub()) },
	"cas-put":         func() *cli.App { return NewApp("cas-put", "", CASPut()) },
	"manifest-append": func() *cli.App { return NewApp("manifest-append", "", ManifestAppend()) },
	"ec-discover":     func() *cli.App { return NewApp("ec-discover", "", Discover()) },
}

// ECNode is the all-in-one binary: every stage and service as a subcommand, so
// that one static binary is enough on a host.
func ECNode() *cli.App {
	return NewApp("ec-node", "archive MoQ broadcasts into a content-addressed store",
		WTArchive(),
		Replay(),
		named("sub", MoQSub()),
		&cli.Command{Name: "cas", Usage: "content-addressed store", Subcommands: []*cli.Command{
			named("put", CASPut()),
			named("verify", CASVerify()),
		}},
		&cli.Command{Name: "manifest", Usage: "JSONL manifests", Subcommands: []*cli.Command{
			named("append", ManifestAppend()),
			named("check", ManifestCheck()),
			ManifestShip(),
			ManifestFetch(),
			ManifestSessions(),
		}},
		named("discover", Discover()),
		Export(),
		ArchiveServe(),
		ArchiveAuto(),
		ArchiveStatus(),
		SystemdUnits(),
	)
}

// named returns cmd under another name (a small binary's command as a subcommand).
func named(name string, cmd *cli.Command) *cli.Command {
	cmd.Name = name
	return cmd
}
