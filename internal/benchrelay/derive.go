package main

import (
	"context"
	"errors"
	"flag"

	"github.com/every-channel/ec-node/internal/cliptag"
	"github.com/every-channel/ec-node/pkg/cas"
)

// deriveMain writes copies -first .. -first+-n-1 of one archived broadcast,
// each CMAF group made unique to its copy (internal/cliptag).
func deriveMain(args []string) error {
	fs := flag.NewFlagSet("derive", flag.ContinueOnError)
	store := fs.String("store", "", "CAS root holding the broadcast; the copies' objects go there too")
	manifests := fs.String("manifests", "", "manifest root")
	from := fs.String("from", "", "broadcast to copy")
	name := fs.String("name", "", "name of copy i, with %d for i (e.g. src-%d.hang)")
	first := fs.Int("first", 0, "index of the first copy")
	n := fs.Int("n", 1, "copies to write")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *store == "" || *manifests == "" || *from == "" || *name == "" || *first < 0 || *n < 0 {
		return errors.New("derive: want -store, -manifests, -from, -name, -first >= 0 and -n >= 0")
	}
	s, err := cas.OpenLocal(*store)
	if err != nil {
		return err
	}
	return cliptag.Derive(context.Background(), s, *manifests, *from, *name, *first, *n)
}
