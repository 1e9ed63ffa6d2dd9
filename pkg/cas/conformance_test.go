package cas_test

import (
	"testing"

	"github.com/every-channel/ec-node/pkg/cas"
	"github.com/every-channel/ec-node/pkg/cas/castest"
)

func TestLocalConformance(t *testing.T) {
	castest.Run(t, castest.Target{Open: func(t *testing.T) cas.Store {
		s, err := cas.OpenLocal(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	}})
}

func TestMemoryConformance(t *testing.T) {
	castest.Run(t, castest.Target{InMemory: true, Open: func(*testing.T) cas.Store { return cas.NewMemory() }})
}
