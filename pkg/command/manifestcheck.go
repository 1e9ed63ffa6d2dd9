package command

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/every-channel/ec-node/pkg/cas"
	"github.com/every-channel/ec-node/pkg/manifest"
	"github.com/urfave/cli/v2"
)

// ManifestCheck is `ec-node manifest check`: cross-check manifests against the CAS.
func ManifestCheck() *cli.Command {
	return &cli.Command{
		Name:  "check",
		Usage: "check every manifest line and the object it names",
		Description: `Reads every manifest file under --manifest-dir and reports lines that do not
parse, torn last lines, entries filed under the wrong names, duplicate entries, and
group entries whose object is missing from --root or has another size. --rehash also
re-hashes each referenced object. --unreferenced lists objects no manifest names
(not an inconsistency: cas-put may have stored them before a crash). Symbolic links
and special files below --manifest-dir are problems: never followed or read.
--manifest-dir itself may be a link; it is resolved once.

EXIT STATUS
   0   consistent
   1   at least one problem found
   2   bad flags or arguments
   74  the trees could not be read
   78  --manifest-dir or --root missing`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "manifest-dir", Required: true, Usage: "manifest root directory", EnvVars: []string{"EC_MANIFEST_DIR"}},
			&cli.StringFlag{Name: "root", Aliases: []string{"store"}, Required: true, Usage: storeUsage, EnvVars: []string{"EC_CAS_ROOT"}},
			&cli.BoolFlag{Name: "json", Usage: "print the report as JSON"},
			&cli.BoolFlag{Name: "rehash", Usage: "re-hash every referenced object"},
			&cli.BoolFlag{Name: "unreferenced", Usage: "report objects no manifest references"},
			&cli.IntFlag{Name: "workers", Value: 8, Usage: "objects checked in parallel"},
		},
		Action: runManifestCheck,
	}
}

func runManifestCheck(c *cli.Context) error {
	root := c.String("root")
	// Refuse a root that is not a store rather than create an empty one and
	// report every object missing.
	if fi, err := os.Stat(filepath.Join(root, "objects", "blake3")); !strings.HasPrefix(root, "s3://") && (err != nil || !fi.IsDir()) {
		return withExit(ExitIOErr, fmt.Errorf("--root %s is not a CAS root (no objects/blake3)", root))
	}
	if fi, err := os.Stat(c.String("manifest-dir")); err != nil || !fi.IsDir() {
		return withExit(ExitIOErr, fmt.Errorf("--manifest-dir %s is not a directory", c.String("manifest-dir")))
	}
	store, err := openStore(c.Context, root)
	if err != nil {
		return withExit(treeExit(err), err)
	}
	opts := manifest.CheckOptions{Rehash: c.Bool("rehash"), Workers: c.Int("workers")}
	if c.Bool("unreferenced") {
		opts.ListObjects = store.(interface {
			Each(context.Context, func(cas.ID) error) error
		}).Each
	}
	rep, err := manifest.Check(c.Context, c.String("manifest-dir"), store, opts)
	if err != nil {
		return withExit(ExitIOErr, err)
	}
	if err := printManifestReport(streams(c).Stdout, &rep, c.Bool("json"), opts.ListObjects != nil); err != nil {
		return withExit(ExitIOErr, err)
	}
	if !rep.Clean() {
		return withExit(ExitFailure, fmt.Errorf("%d problems in %s", rep.ProblemCount, c.String("manifest-dir")))
	}
	return nil
}

// printManifestReport prints a check report: one problem per line and a
// summary, or the report as JSON.
func printManifestReport(out io.Writer, rep *manifest.CheckReport, asJSON, listed bool) error {
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	for _, p := range rep.Problems {
		fmt.Fprintf(out, "%s\t%s:%d\t%s\n", p.Kind, p.File, p.Line, p.Detail)
	}
	for _, p := range rep.UnreferencedPaths {
		fmt.Fprintf(out, "unreferenced\t%s\n", p)
	}
	fmt.Fprintf(out, "%d files, %d lines (%d groups, %d gaps), %d sessions: %d problems", rep.Files, rep.Lines, rep.Groups, rep.Gaps, rep.Sessions, rep.ProblemCount)
	if listed {
		fmt.Fprintf(out, ", %d unreferenced objects", rep.Unreferenced)
	}
	_, err := fmt.Fprintln(out)
	return err
}
