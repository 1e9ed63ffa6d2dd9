package metrics

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/prometheus/client_golang/prometheus"
)

// maxFile bounds one metrics file read back; a worker's is a few KiB per track.
const maxFile = 4 << 20

// WriteFile replaces path, atomically, with g's metrics in the text format.
func WriteFile(path string, g prometheus.Gatherer) error {
	if err := prometheus.WriteToTextfile(path, g); err != nil {
		return fmt.Errorf("metrics file: %w", err)
	}
	return nil
}

// Files gathers the *.prom files in dir: the metrics of workers that run as
// other processes (archive-auto --mode systemd), each written by WriteFile
// beside the worker's status file. A file that cannot be read or
// parsed is reported as an error and the others are still served.
type Files string

// Gather implements prometheus.Gatherer.
func (dir Files) Gather() ([]*dto.MetricFamily, error) {
	paths, err := filepath.Glob(filepath.Join(string(dir), "*.prom"))
	if err != nil {
		return nil, err
	}
	var (
		mfs  []*dto.MetricFamily
		errs []error
	)
	for _, p := range paths {
		if strings.HasPrefix(filepath.Base(p), ".") {
			continue
		}
		fams, err := readFile(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, mf := range fams {
			mfs = append(mfs, mf)
		}
	}
	return mfs, errors.Join(errs...)
}

func readFile(path string) (map[string]*dto.MetricFamily, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFile+1))
	if err != nil {
		return nil, fmt.Errorf("metrics file %s: %w", path, err)
	}
	if len(data) > maxFile {
		return nil, fmt.Errorf("metrics file %s: larger than %d bytes", path, maxFile)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(data)))
	if err != nil {
		return nil, fmt.Errorf("metrics file %s: %w", path, err)
	}
	return fams, nil
}
