package cas

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/zeebo/blake3"

	"github.com/every-channel/ec-node/internal/safefs"
)

// benchObjectSize is the object size of the durable-write benchmarks (one MoQ
// group of a few hundred kbit/s video is about this size).
const benchObjectSize = 64 << 10

// benchDir is where the durable benchmarks write: $CAS_BENCH_DIR (to measure a
// particular disk) or a temp directory. With CAS_BENCH_KEEP=1 the objects stay
// (the caller removes CAS_BENCH_DIR later): an archive's store only grows, and
// on ext4 without a journal every inode freed in the last 30 s slows down the
// allocation of new ones in its block group, so deleting one variant's objects
// would slow the next.
func benchDir(b *testing.B) string {
	if d := os.Getenv("CAS_BENCH_DIR"); d != "" {
		dir, err := os.MkdirTemp(d, "cas-bench-")
		if err != nil {
			b.Fatal(err)
		}
		if os.Getenv("CAS_BENCH_KEEP") != "1" {
			b.Cleanup(func() { os.RemoveAll(dir) })
		}
		return dir
	}
	return b.TempDir()
}

// cpuTime is the user and system CPU time the process has used so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportRates reports objects/s and the CPU time per object since cpu0. The
// CPU figure is what a loaded machine changes least: wall-clock rates there
// depend on what else runs.
func reportRates(b *testing.B, cpu0 time.Duration) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "objects/s")
	b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/float64(b.N), "cpu-us/object")
}

// uniqueObject fills buf with content unique to (seed, i), so no write is a dedup hit.
func uniqueObject(buf []byte, seed uint64, i int64) {
	binary.LittleEndian.PutUint64(buf[0:], seed)
	binary.LittleEndian.PutUint64(buf[8:], uint64(i))
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	buf := make([]byte, n)
	for i := range buf {
		buf[i] = byte(r.Uint32())
	}
	return buf
}

// BenchmarkPutDurable stores b.N distinct 64 KiB objects from `conc` goroutines.
func BenchmarkPutDurable(b *testing.B) {
	for _, conc := range []int{1, 8, 32, 64, 128} {
		b.Run(fmt.Sprintf("conc=%d", conc), func(b *testing.B) {
			s, err := OpenLocal(benchDir(b))
			if err != nil {
				b.Fatal(err)
			}
			seed := rand.Uint64()
			base := randomBytes(benchObjectSize, seed)
			var next atomic.Int64
			var wg sync.WaitGroup
			b.SetBytes(benchObjectSize)
			b.ResetTimer()
			cpu0 := cpuTime(b)
			for range conc {
				wg.Add(1)
				go func() {
					defer wg.Done()
					buf := bytes.Clone(base)
					for i := next.Add(1) - 1; i < int64(b.N); i = next.Add(1) - 1 {
						uniqueObject(buf, seed, i)
						res, err := s.Put(context.Background(), bytes.NewReader(buf))
						if err != nil || !res.New {
							b.Errorf("put %d: new=%v err=%v", i, res.New, err)
							return
						}
					}
				}()
			}
			wg.Wait()
			reportRates(b, cpu0)
		})
	}
}

// BenchmarkNaiveDurable is the reference: one goroutine doing, per object, hash,
// temp file in the shard directory, write, fsync, close, rename, fsync directory.
func BenchmarkNaiveDurable(b *testing.B) {
	dir := benchDir(b)
	seed := rand.Uint64()
	buf := randomBytes(benchObjectSize, seed)
	b.SetBytes(benchObjectSize)
	b.ResetTimer()
	cpu0 := cpuTime(b)
	for i := range int64(b.N) {
		uniqueObject(buf, seed, i)
		sum := blake3.Sum256(buf)
		name := fmt.Sprintf("%x", sum)
		shard := filepath.Join(dir, name[:2])
		if err := os.MkdirAll(shard, 0o755); err != nil {
			b.Fatal(err)
		}
		f, err := os.CreateTemp(shard, "tmp-")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := f.Write(buf); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
		if err := os.Rename(f.Name(), filepath.Join(shard, name+".bin")); err != nil {
			b.Fatal(err)
		}
		if err := safefs.SyncDir(shard); err != nil {
			b.Fatal(err)
		}
	}
	reportRates(b, cpu0)
}
