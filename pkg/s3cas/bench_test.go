package s3cas

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/every-channel/ec-node/pkg/cas"
)

// BenchmarkPut stores b.N distinct objects into a local CAS root and into a
// bucket on a real SeaweedFS on loopback, in one run, at two object sizes (a
// small and a large MoQ group) and two concurrencies. It reports objects/s and
// MB/s; scripts/bench-s3.sh runs it for BENCHMARKS.md.
func BenchmarkPut(b *testing.B) {
	srv := testServer(b)
	for _, size := range []int{64 << 10, 1 << 20} {
		for _, conc := range []int{1, 16} {
			for _, kind := range []string{"local", "s3"} {
				b.Run(fmt.Sprintf("store=%s/size=%dKiB/conc=%d", kind, size>>10, conc), func(b *testing.B) {
					var s cas.Store
					if kind == "local" {
						l, err := cas.OpenLocal(b.TempDir())
						if err != nil {
							b.Fatal(err)
						}
						s = l
					} else {
						s = openTest(b, srv, Config{Prefix: freshPrefix()})
					}
					benchPut(b, s, size, conc)
				})
			}
		}
	}
}

func benchPut(b *testing.B, s cas.Store, size, conc int) {
	seed := rand.Uint64()
	base := make([]byte, size)
	rand.NewChaCha8([32]byte{byte(seed)}).Read(base)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, conc)
	b.SetBytes(int64(size))
	b.ResetTimer()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := bytes.Clone(base)
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				binary.LittleEndian.PutUint64(buf[0:], seed)
				binary.LittleEndian.PutUint64(buf[8:], uint64(i)) // distinct: no dedup hits
				if _, err := cas.Put(context.Background(), s, bytes.NewReader(buf)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "objects/s")
}
