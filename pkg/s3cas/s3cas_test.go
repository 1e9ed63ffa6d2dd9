package s3cas

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/zeebo/blake3"

	"github.com/every-channel/ec-node/internal/seaweedfs"
	"github.com/every-channel/ec-node/pkg/cas"
	"github.com/every-channel/ec-node/pkg/cas/castest"
)

func TestParseURL(t *testing.T) {
	tests := []struct {
		in      string
		want    Config
		wantErr string
	}{
		{"s3://archive", Config{Bucket: "archive"}, ""},
		{"s3://archive/", Config{Bucket: "archive"}, ""},
		{"s3://archive/site-a/cas?endpoint=http://127.0.0.1:8333&region=eu-1",
			Config{Bucket: "archive", Prefix: "site-a/cas/", Endpoint: "http://127.0.0.1:8333", Region: "eu-1"}, ""},
		{"s3://b?conditional=false&anonymous=true", Config{Bucket: "b", Unconditional: true, Anonymous: true}, ""},
		{"s3://b?conditional=maybe", Config{}, "want true or false"},
		{"s3://b?request-timeout=90s", Config{Bucket: "b", RequestTimeout: 90 * time.Second}, ""},
		{"s3://b?request-timeout=0s", Config{}, "want a positive duration"},
		{"s3://b?endpoint=127.0.0.1:8333", Config{}, "want http(s)://HOST"},
		{"s3://b?secret=x", Config{}, "unknown parameter"},
		{"s3:///prefix", Config{}, "want s3://BUCKET"},
		{"s3://key:secret@b", Config{}, "want s3://BUCKET"},
		{"http://b/p", Config{}, "want s3://BUCKET"},
	}
	for _, tt := range tests {
		got, err := ParseURL(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseURL(%q) = %+v, %v; want error containing %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseURL(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func TestObjectID(t *testing.T) {
	id := cas.ID(blake3.Sum256([]byte("x")))
	h := id.String()
	tests := []struct {
		rel string
		ok  bool
	}{
		{cas.ObjectPath(id), true},
		{"objects/blake3/" + h[:2] + "/" + h + ".tmp", false},
		{"objects/blake3/00/" + h + ".bin", h[:2] == "00"},
		{"objects/blake3/" + h[:2] + "/" + strings.ToUpper(h) + ".bin", false},
		{"objects/blake3/" + h[:2] + "/" + h[:63] + ".bin", false},
		{"objects/sha256/" + h[:2] + "/" + h + ".bin", false},
		{"objects/blake3/" + h[:2] + "x" + h + ".bin", false},
	}
	for _, tt := range tests {
		got, ok := objectID(tt.rel)
		if ok != tt.ok || ok && got != id {
			t.Errorf("objectID(%q) = %s, %v; want ok=%v", tt.rel, got, ok, tt.ok)
		}
	}
}

func TestSpoolSpillsToAnUnlinkedFile(t *testing.T) {
	dir := t.TempDir()
	s := spool{dir: dir, memLimit: 10}
	data := []byte("0123456789abcdef")
	for _, p := range [][]byte{data[:6], data[6:10], data[10:]} {
		if err := s.write(p); err != nil {
			t.Fatal(err)
		}
	}
	defer s.close()
	if s.f == nil || s.size != int64(len(data)) {
		t.Fatalf("after %d bytes over a 10-byte limit: file %v, size %d", len(data), s.f, s.size)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("spool dir holds %d entries; the spool file must be unlinked", len(entries))
	}
	got := make([]byte, len(data))
	if _, err := s.reader().ReadAt(got, 0); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("spooled %q, %v; want %q", got, err, data)
	}
}

// testServer starts SeaweedFS for the tests that need a real S3 server. They
// run only when EC_SEAWEEDFS_BIN names a weed binary (scripts/install-seaweedfs.sh
// prints one); the e2e tests build it if needed.
func testServer(t testing.TB) *seaweedfs.Server {
	t.Helper()
	if os.Getenv("EC_SEAWEEDFS_BIN") == "" {
		if os.Getenv("CI") != "" { // scripts/test.sh sets it; in CI a skip would hide the S3 store
			t.Fatal("EC_SEAWEEDFS_BIN unset in CI")
		}
		t.Skip("EC_SEAWEEDFS_BIN unset: no real S3 server (set it to the path scripts/install-seaweedfs.sh prints)")
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	srv, err := seaweedfs.Start(context.Background(), t.TempDir(), "cas")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	return srv
}

func openTest(t testing.TB, srv *seaweedfs.Server, cfg Config) *Store {
	t.Helper()
	cfg.Bucket, cfg.Endpoint, cfg.SpoolDir = "cas", srv.Endpoint(), t.TempDir()
	s, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var prefixes atomic.Int64

// freshPrefix makes an empty store in the shared bucket.
func freshPrefix() string { return fmt.Sprintf("t%d", prefixes.Add(1)) }

func TestConformanceSeaweedFS(t *testing.T) {
	srv := testServer(t)
	castest.Run(t, castest.Target{Open: func(t *testing.T) cas.Store {
		// The smallest part size, so that the large-object test goes multipart.
		return openTest(t, srv, Config{Prefix: freshPrefix(), PartSize: minPartSize})
	}})
}

func TestSeaweedFS(t *testing.T) {
	srv := testServer(t)
	ctx := context.Background()

	t.Run("AHungServerFailsTheCommit", func(t *testing.T) {
		s := openTest(t, srv, Config{Prefix: freshPrefix(), RequestTimeout: 500 * time.Millisecond, MaxAttempts: 2})
		if err := srv.Pause(); err != nil {
			t.Fatal(err)
		}
		resumed := false
		resume := func() {
			if !resumed {
				resumed = true
				if err := srv.Resume(); err != nil {
					t.Fatal(err)
				}
			}
		}
		defer resume()
		// The guard only keeps a broken timeout from hanging the test.
		guard, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		_, err := cas.Put(guard, s, strings.NewReader("sent to a hung server"))
		if err == nil || guard.Err() != nil {
			t.Fatalf("put to a paused server: %v (guard: %v); want the request timeout to fail it", err, guard.Err())
		}
		t.Logf("put to a paused server: %v", err)
		resume()
		// The same store works again once the server has caught up with what
		// queued while it was stopped.
		for {
			_, err := cas.Put(guard, s, strings.NewReader("after the server resumed"))
			if err == nil {
				break
			}
			if guard.Err() != nil {
				t.Fatalf("put after the server resumed: %v", err)
			}
		}
	})

	t.Run("UnconditionalFallbackDedups", func(t *testing.T) {
		s := openTest(t, srv, Config{Prefix: freshPrefix(), Unconditional: true})
		for i, wantNew := range []bool{true, false} {
			res, err := cas.Put(ctx, s, strings.NewReader("fallback"))
			if err != nil || res.New != wantNew {
				t.Fatalf("put %d: %+v, %v; want New=%v", i, res, err, wantNew)
			}
		}
	})

	t.Run("VerifyFindsCorruptAndStray", func(t *testing.T) {
		s := openTest(t, srv, Config{Prefix: freshPrefix()})
		good, err := cas.Put(ctx, s, strings.NewReader("good object"))
		if err != nil {
			t.Fatal(err)
		}
		bad, err := cas.Put(ctx, s, strings.NewReader("object to corrupt"))
		if err != nil {
			t.Fatal(err)
		}
		// Overwrite behind the store's back, as bit rot or a buggy tool would.
		put := func(key, body string) {
			if _, err := s.client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("cas"), Key: aws.String(key),
				Body: strings.NewReader(body)}); err != nil {
				t.Fatal(err)
			}
		}
		put(s.Key(bad.ID), "object to corrupT")
		put(s.cfg.Prefix+"objects/blake3/zz/stray.bin", "stray")

		var seen atomic.Int64
		report, err := s.Verify(ctx, cas.VerifyOptions{OnObject: func(cas.ObjectCheck) { seen.Add(1) }})
		if err != nil {
			t.Fatal(err)
		}
		if report.Objects != 2 || seen.Load() != 2 || report.Corrupt != 1 || report.Stray != 1 || report.Unreadable != 0 || report.Clean() {
			t.Fatalf("report %+v (OnObject %d times); want 2 objects, 1 corrupt, 1 stray", report, seen.Load())
		}
		if f := report.Findings[0]; f.Kind != cas.Corrupt || f.Path != bad.Path || f.Expected != bad.ID.String() {
			t.Errorf("first finding %+v, want %s corrupt", f, bad.Path)
		}
		var ids []cas.ID
		if err := s.Each(ctx, func(id cas.ID) error { ids = append(ids, id); return nil }); err != nil || len(ids) != 2 {
			t.Errorf("Each listed %v, %v; want the two objects", ids, err)
		}
		if !slices.Contains(ids, good.ID) || !slices.Contains(ids, bad.ID) {
			t.Errorf("Each listed %v, want %s and %s", ids, good.ID, bad.ID)
		}
	})

	t.Run("KeysAreCreateOnly", func(t *testing.T) {
		s := openTest(t, srv, Config{Prefix: freshPrefix()})
		for i, want := range []bool{true, false} {
			created, err := s.PutKey(ctx, "manifests/b/t/0000000000.jsonl", []byte(fmt.Sprintf("try %d\n", i)))
			if err != nil || created != want {
				t.Fatalf("PutKey %d = %v, %v; want created=%v", i, created, err, want)
			}
		}
		got, err := s.GetKey(ctx, "manifests/b/t/0000000000.jsonl", 100)
		if err != nil || string(got) != "try 0\n" {
			t.Fatalf("GetKey = %q, %v; want the first put's bytes", got, err)
		}
		if _, err := s.GetKey(ctx, "manifests/b/t/0000000000.jsonl", 3); err == nil {
			t.Error("GetKey over its limit succeeded")
		}
		if _, err := s.GetKey(ctx, "manifests/none", 100); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("GetKey of an absent key: %v, want fs.ErrNotExist", err)
		}
		var keys []string
		if err := s.ListKeys(ctx, "manifests/", func(k string) error { keys = append(keys, k); return nil }); err != nil ||
			!slices.Equal(keys, []string{"manifests/b/t/0000000000.jsonl"}) {
			t.Errorf("ListKeys = %q, %v", keys, err)
		}
	})

	t.Run("MissingBucket", func(t *testing.T) {
		_, err := Open(ctx, Config{Bucket: "no-such-bucket", Endpoint: srv.Endpoint(), MaxAttempts: 1})
		if err == nil {
			t.Fatal("Open of a missing bucket succeeded")
		}
	})
}
