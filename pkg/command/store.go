package command

import (
	"context"
	"strings"

	"github.com/every-channel/ec-node/pkg/cas"
	"github.com/every-channel/ec-node/pkg/s3cas"
)

// storeUsage documents the value every command's store flag takes.
const storeUsage = "CAS: a local root directory, or s3://BUCKET[/PREFIX][?endpoint=URL&region=R] " +
	"(credentials from the AWS environment and config files; docs/cas-layout.md)"

// openStore opens the CAS a --store (--root, --output-dir) value names: an
// s3:// URL is a bucket (package s3cas), anything else a local root directory.
func openStore(ctx context.Context, spec string) (cas.Store, error) {
	if !strings.HasPrefix(spec, "s3://") {
		return cas.OpenLocal(spec)
	}
	cfg, err := s3cas.ParseURL(spec)
	if err != nil {
		return nil, err
	}
	return s3cas.Open(ctx, cfg)
}

// verifyStore re-hashes every object of the store spec names.
func verifyStore(ctx context.Context, spec string, opts cas.VerifyOptions) (cas.VerifyReport, error) {
	if !strings.HasPrefix(spec, "s3://") {
		return cas.Verify(ctx, spec, opts)
	}
	store, err := openStore(ctx, spec)
	if err != nil {
		return cas.VerifyReport{Root: spec}, err
	}
	return store.(*s3cas.Store).Verify(ctx, opts)
}
