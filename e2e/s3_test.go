//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/every-channel/ec-node/internal/seaweedfs"
	"github.com/every-channel/ec-node/pkg/cas"
	"github.com/every-channel/ec-node/pkg/manifest"
	"github.com/every-channel/ec-node/pkg/record"
	"github.com/every-channel/ec-node/pkg/s3cas"
	"github.com/every-channel/ec-node/pkg/shard"
)

// startS3 starts a real S3-compatible server (SeaweedFS) with one bucket,
// "archive", and sets the AWS environment the archivers inherit: dummy keys
// (the server has no identities and accepts any signature), no instance
// metadata lookups. It skips the test when no weed binary is available:
// EC_SEAWEEDFS_BIN unset and scripts/install-seaweedfs.sh cannot build one.
func startS3(t *testing.T, dir string) *seaweedfs.Server {
	t.Helper()
	if _, err := seaweedfs.Bin(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("no SeaweedFS in CI: %v", err)
		}
		t.Skipf("no SeaweedFS: set EC_SEAWEEDFS_BIN to the path scripts/install-seaweedfs.sh prints (%v)", err)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "e2e")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "e2e-secret")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := seaweedfs.Start(ctx, filepath.Join(dir, "seaweedfs"), "archive")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	return srv
}

func s3URL(srv *seaweedfs.Server, prefix string) string {
	return "s3://archive/" + prefix + "?endpoint=" + srv.Endpoint()
}

// openBucket opens the store a test checks the archivers' work in.
func openBucket(t *testing.T, srv *seaweedfs.Server, prefix string) *s3cas.Store {
	t.Helper()
	s, err := s3cas.Open(context.Background(), s3cas.Config{Bucket: "archive", Prefix: prefix, Endpoint: srv.Endpoint()})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestS3ArchiveRealRelay archives one live broadcast from the real relay into
// a real S3 server with two wt-archive processes (replication factor 2: two
// hosts, one bucket, separate local manifests), kills the S3 server in the
// middle and restarts it, then checks that:
//   - both archivers kept running and every group either manifest claims is in
//     the bucket with the right bytes (manifest check --rehash against it);
//   - groups received while the server was down are store-failed gaps, and
//     every sequence is a group or inside a gap, though each store failure
//     ends a session and the next resumes from the relay's cache, and the
//     archivers are stopped with commits in flight (PUTs to SeaweedFS hang for
//     up to 30 s after its restart);
//   - the bucket holds each object once: its objects are exactly the union of
//     those the two manifests name, and a group both archived is one object;
//   - `cas verify --store s3://…` is clean, then catches a corrupted object.
func TestS3ArchiveRealRelay(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dir := t.TempDir()
	srv := startS3(t, dir)
	const broadcast = "s3.cam"
	relay, _ := startLive(t, ctx, dir, broadcast)
	store := s3URL(srv, "site")
	var archivers []*archiverProc
	mdirs := []string{filepath.Join(dir, "m1"), filepath.Join(dir, "m2")}
	for i, mdir := range mdirs {
		a := newArchiver(t, dir, "archiver"+string(rune('1'+i)), relay.URL("anon"), broadcast, store, mdir,
			"--tls-fingerprint", relay.Fingerprint(), "--max-backoff", "2s", "--announce-wait", "10s")
		a.start()
		archivers = append(archivers, a)
	}
	video := func(mdir string) []manifest.Entry { return readManifests(t, mdir)[trackKey{broadcast, videoTrack}] }
	for _, mdir := range mdirs {
		waitFor(t, "video groups in "+mdir, time.Minute, func() (bool, string) { return groupCount(video(mdir)) >= 3, "" })
	}

	srv.Kill()
	down := time.Now()
	time.Sleep(8 * time.Second)
	if err := srv.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	up := time.Now()
	figure(t, "s3", "S3 server killed for %v", up.Sub(down).Round(100*time.Millisecond))
	for _, mdir := range mdirs {
		waitFor(t, "a video group archived after the S3 restart in "+mdir, 2*time.Minute, func() (bool, string) {
			return !firstGroupAfterTime(video(mdir), up).IsZero(), ""
		})
	}
	for i, a := range archivers {
		if err := a.stop(); err != nil {
			t.Fatalf("archiver %d: %v\n%s", i+1, err, lastLines(a.logText(), 20))
		}
	}

	bucket := openBucket(t, srv, "site")
	named := map[cas.ID]bool{}
	type trackGroup struct {
		track string
		group uint64
	}
	byGroup := map[trackGroup]string{} // object id, across both archivers
	shared := 0
	for _, mdir := range mdirs {
		rep, err := manifest.Check(ctx, mdir, bucket, manifest.CheckOptions{Rehash: true})
		if err != nil {
			t.Fatal(err)
		}
		if !rep.Clean() {
			t.Fatalf("manifest check --rehash of %s against the bucket: %+v", mdir, rep)
		}
		storeFailed := 0
		for k, entries := range readManifests(t, mdir) {
			acc := account(t, k.track, entries)
			for _, g := range acc.gaps {
				if g.Reason == record.GapStoreFailed {
					storeFailed += int(g.Last - g.First + 1)
				}
			}
			for _, e := range entries {
				if e.Kind != record.KindGroup {
					continue
				}
				id, err := cas.ParseID(e.BLAKE3)
				if err != nil {
					t.Fatal(err)
				}
				named[id] = true
				key := trackGroup{k.track, e.Group}
				if prev, ok := byGroup[key]; ok {
					shared++
					if prev != e.BLAKE3 {
						t.Errorf("%s group %d: the archivers stored different objects %s and %s", k.track, e.Group, prev, e.BLAKE3)
					}
				}
				byGroup[key] = e.BLAKE3
			}
		}
		figure(t, "s3", "%s: %d groups checked in the bucket (re-hashed), %d groups store-failed while the server was down",
			filepath.Base(mdir), rep.Groups, storeFailed)
	}
	if shared == 0 {
		t.Error("the two archivers archived no group in common: dedup untested")
	}
	var inBucket []cas.ID
	if err := bucket.Each(ctx, func(id cas.ID) error { inBucket = append(inBucket, id); return nil }); err != nil {
		t.Fatal(err)
	}
	// Objects no manifest names are commits that completed after an earlier
	// commit of the same queue had failed (the queue then fails every group
	// behind it: store-failed gaps). They are unreferenced, never missing, and
	// at most the commits in flight: 16 per archiver.
	unreferenced := 0
	for _, id := range inBucket {
		if !named[id] {
			unreferenced++
		}
	}
	if len(inBucket)-unreferenced != len(named) {
		t.Errorf("bucket holds %d of the %d distinct objects the manifests name", len(inBucket)-unreferenced, len(named))
	}
	if unreferenced > 2*16 {
		t.Errorf("%d unreferenced objects in the bucket, more than the 32 commits the two archivers can have in flight", unreferenced)
	}
	figure(t, "s3", "R=2: %d groups archived by both as one object each; bucket holds %d objects: the %d the manifests name, and %d unreferenced (committed after their queue failed)",
		shared, len(inBucket), len(named), unreferenced)

	ec := buildBinary(t, "ec-node")
	// Manifests shipped as sealed segments read back whole, and check clean
	// against the bucket: a lost host loses only what was not yet shipped.
	if out, err := exec.Command(ec, "manifest", "ship", "--once", "--origin", "m1", "--manifest-dir", mdirs[0], "--store", store).CombinedOutput(); err != nil {
		t.Fatalf("manifest ship: %v\n%s", err, out)
	}
	fetched := filepath.Join(dir, "fetched")
	if out, err := exec.Command(ec, "manifest", "fetch", "--origin", "m1", "--store", store, "--out", fetched).CombinedOutput(); err != nil {
		t.Fatalf("manifest fetch: %v\n%s", err, out)
	}
	for k, entries := range readManifests(t, mdirs[0]) {
		if got := readManifests(t, fetched)[k]; len(got) != len(entries) {
			t.Errorf("%s/%s: %d lines fetched back, %d in the local manifest", k.broadcast, k.track, len(got), len(entries))
		}
	}
	if out, err := exec.Command(ec, "manifest", "check", "--rehash", "--manifest-dir", fetched, "--store", store).CombinedOutput(); err != nil {
		t.Fatalf("manifest check of the fetched manifests against the bucket: %v\n%s", err, out)
	}
	mp4 := filepath.Join(dir, "export.mp4")
	if out, err := exec.Command(ec, "export", "--store", store, "--manifest-dir", fetched, "--broadcast", broadcast, "-o", mp4).CombinedOutput(); err != nil {
		t.Fatalf("export from the bucket: %v\n%s", err, out)
	}
	streams, span := probeExport(t, mp4)
	if len(streams) == 0 || span <= 0 {
		t.Fatalf("export from the bucket: streams %q, %.1f s", streams, span)
	}
	figure(t, "s3", "manifests of %s shipped as segments, fetched back line for line, manifest check --rehash clean against the bucket; export from them and the bucket: %q, %.1f s",
		filepath.Base(mdirs[0]), streams, span)

	if out, err := exec.Command(ec, "cas", "verify", "--store", store).CombinedOutput(); err != nil {
		t.Fatalf("cas verify of the bucket: %v\n%s", err, out)
	}
	victim := inBucket[len(inBucket)/2]
	corruptObject(t, srv, "site/"+cas.ObjectPath(victim))
	out, err := exec.Command(ec, "cas", "verify", "--store", store).Output()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("cas verify after corrupting %s: %v, want exit status 1", victim, err)
	}
	if want := "corrupt\tobjects/blake3/" + victim.String()[:2] + "/" + victim.String() + ".bin"; !strings.Contains(string(out), want) {
		t.Fatalf("cas verify output %q does not name the corrupted object (%q)", out, want)
	}
	figure(t, "s3", "cas verify --store s3://… caught the corrupted object %s", victim)
}

// corruptObject overwrites an object behind the store's back (the server
// accepts unsigned requests).
func corruptObject(t *testing.T, srv *seaweedfs.Server, key string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, srv.Endpoint()+"/archive/"+key, strings.NewReader("bit rot"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("overwrite %s: %s", key, resp.Status)
	}
}

// TestArchiveAutoShardingS3: three archive-auto processes on loopback share
// twelve live broadcasts of a directory by rendezvous hashing, writing into one
// bucket. With replication factor R every broadcast is archived by exactly R
// of them (R = 1 and R = 2), as shard.Ring computes; each host ships its own
// manifests into the bucket as segments (--ship-interval) under its name;
// removing one host (the other two restarted with the shorter list) moves only
// that host's broadcasts.
func TestArchiveAutoShardingS3(t *testing.T) {
	dir := t.TempDir()
	srv := startS3(t, dir)
	f := newArchiveFixture(t)
	directory := newDirectoryServer(t)
	var names []string
	for i := range 12 {
		name := fmt.Sprintf("shard-%02d", i)
		names = append(names, name)
		f.publish(name)
		directory.set(name, f.relay.URL("anon"))
	}
	phases := 0

	// phase runs one archive-auto per host until every broadcast is archived by
	// replicas hosts, and returns each host's broadcasts. Each phase has its own
	// key prefix in the bucket, so that its shipped manifests are its own.
	phase := func(hosts []string, replicas int) map[string][]string {
		t.Helper()
		phases++
		store := s3URL(srv, fmt.Sprintf("shard-%d", phases))
		procs := map[string]*autoProcess{}
		for _, h := range hosts {
			procs[h] = startArchiveAuto(t, "--directory", directory.URL, "--store", store, "--ship-interval", "1s",
				"--shard-hosts", strings.Join(hosts, ","), "--shard-self", h, "--shard-replicas", strconv.Itoa(replicas))
		}
		got := map[string][]string{}
		waitFor(t, fmt.Sprintf("each broadcast archived by %d of %q", replicas, hosts), 2*time.Minute, func() (bool, string) {
			clear(got)
			owners := map[string]int{}
			for h, p := range procs {
				for b, groups := range groupsByBroadcast(t, statusView{dir: p.statusDir}) {
					if groups > 0 {
						got[h] = append(got[h], b)
						owners[b]++
					}
				}
			}
			for _, b := range names {
				if owners[b] != replicas {
					return false, fmt.Sprint(got)
				}
			}
			return len(owners) == len(names), fmt.Sprint(got)
		})
		// Each host ships its own manifests as segments, keyed by its name.
		for h := range procs {
			waitFor(t, h+"'s manifests shipped", time.Minute, func() (bool, string) {
				out := filepath.Join(t.TempDir(), "fetched")
				msg, err := exec.Command(buildBinary(t, "ec-node"), "manifest", "fetch", "--origin", h, "--store", store, "--out", out).CombinedOutput()
				dirs, _ := os.ReadDir(out)
				return err == nil && len(dirs) == len(got[h]), fmt.Sprintf("%d broadcasts fetched, want %d: %v %s", len(dirs), len(got[h]), err, msg)
			})
		}
		for _, p := range procs {
			p.cmd.Process.Signal(os.Interrupt)
			<-p.done
		}
		ring, err := shard.New(hosts, hosts[0], replicas)
		if err != nil {
			t.Fatal(err)
		}
		for h := range got {
			slices.Sort(got[h])
			var want []string
			for _, b := range names {
				if slices.Contains(ring.Owners(b), h) {
					want = append(want, b)
				}
			}
			if !slices.Equal(got[h], want) {
				t.Errorf("R=%d: %s archives %q, the hash gives it %q", replicas, h, got[h], want)
			}
		}
		figure(t, "shard", "%d hosts, R=%d: %v", len(hosts), replicas, got)
		return got
	}

	phase([]string{"h1", "h2", "h3"}, 2)
	before := phase([]string{"h1", "h2", "h3"}, 1)
	after := phase([]string{"h1", "h2"}, 1)
	for _, h := range []string{"h1", "h2"} {
		for _, b := range before[h] {
			if !slices.Contains(after[h], b) {
				t.Errorf("removing h3 moved %s away from %s", b, h)
			}
		}
		for _, b := range after[h] {
			if !slices.Contains(before[h], b) && !slices.Contains(before["h3"], b) {
				t.Errorf("removing h3 moved %s, not one of h3's, to %s", b, h)
			}
		}
	}
	figure(t, "shard", "removing h3 moved only its %d broadcasts", len(before["h3"]))
}
