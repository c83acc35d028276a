package multicloud

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/intercloud/intercloud/test/netns"
)

// binary is the intercloud binary built once for the package.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "intercloud-multicloud-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary, err = BuildBinary(repoRoot(), dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func repoRoot() string {
	abs, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		panic(err)
	}
	return abs
}

// The whole story in one run: two clouds and on-premises in network
// namespaces, one intercloud process per namespace, real BIRD, dig and
// curl. Each step is a subtest; a failed step stops the run, since the
// next ones build on it.
func TestMultiCloud(t *testing.T) {
	h := netns.New(t)
	topo := Build(t, h, Options{Binary: binary, Repo: repoRoot()})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	begin := time.Now()
	if err := topo.WaitAllCurrent(ctx, time.Minute); err != nil {
		t.Fatalf("the site never converged: %v", err)
	}
	t.Logf("every node live, healthy and current %.1fs after the daemons started", time.Since(begin).Seconds())
	for _, s := range Steps {
		ok := t.Run(s.Name, func(t *testing.T) {
			start := time.Now()
			if err := s.Run(ctx, topo, t.Logf); err != nil {
				t.Fatal(err)
			}
			// Step 7 of the issue: status --wait after every step.
			if _, err := topo.StatusWait(ctx); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %.1fs", s.Title, time.Since(start).Seconds())
		})
		if !ok {
			t.FailNow()
		}
	}
}
