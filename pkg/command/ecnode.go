package command

import "github.com/urfave/cli/v2"

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
		}},
		named("discover", Discover()),
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
