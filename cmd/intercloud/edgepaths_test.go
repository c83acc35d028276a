package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/intercloud/intercloud/edge"
	"github.com/intercloud/intercloud/edge/paths"
)

func TestPrintPaths(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	var b bytes.Buffer
	printPaths(&b, []edge.OriginPaths{{Distribution: "shop", Origin: "blue", Mode: "fastest",
		Chosen: paths.Choice{ID: "parent:seoul-edge-1", Since: now.Add(-90 * time.Second)},
		Paths: []edge.PathRow{
			{ID: "direct", Stats: paths.Stats{TTFB: 151 * time.Millisecond, Loss: 0.02, Samples: 40, Updated: now.Add(-time.Second)}},
			{ID: "parent:seoul-edge-1", Stats: paths.Stats{TTFB: 4 * time.Millisecond, Throughput: 12e6, Samples: 90, Updated: now}, Chosen: true},
			{ID: "parent:seoul-edge-2"},
		}}}, now)
	out := b.String()
	for _, want := range []string{"ORIGIN", "shop/blue", "fastest", "direct", "151ms", "2.0%", "parent:seoul-edge-1", "12.0 MB/s", "yes, since 2026-01-01T11:58:30Z (1m30s)", "never"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
