package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/intercloud/intercloud/controller"
	"github.com/intercloud/intercloud/status"
)

func TestPrintDrift(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	d := &controller.Drift{
		Nodes: []controller.DriftNode{
			{Name: "seoul-gw", Live: true, Checked: now.Add(-5 * time.Second), Drifted: 1, Resources: []status.DriftResource{
				{Kind: "route", ID: "10.2.0.0/16", Expected: "10.2.0.0/16 via 172.31.0.2", Actual: "absent", State: status.DriftSuspended,
					Message: "3 heals within 10m0s: fighting with another tool", Since: now.Add(-90 * time.Second)},
			}},
			{Name: "seoul-edge-1", Live: true, Checked: now.Add(-12 * time.Second)},
			{Name: "tokyo-edge-1", Live: true, Checked: now, Error: "edge: listener http 10.2.0.10:80: permission denied"},
			{Name: "tokyo-gw", Live: true},
			{Name: "tokyo-origin", Error: "down: not checked"},
		},
		Events: []status.DriftEvent{{Time: now.Add(-time.Minute), Node: "seoul-gw", Kind: "route", ID: "10.2.0.0/16", Actual: "absent", State: "healed"}},
	}
	var b bytes.Buffer
	printDrift(&b, d, now)
	out := b.String()
	for _, want := range []string{
		"seoul-gw      route  10.2.0.0/16  10.2.0.0/16 via 172.31.0.2  absent  suspended         1m30s ago  3 heals within 10m0s: fighting with another tool",
		"tokyo-edge-1  -      -            -                           -       check incomplete  -          edge: listener http 10.2.0.10:80: permission denied",
		"tokyo-gw      -      -            -                           -       not checked yet   -",
		"tokyo-origin  -      -            -                           -       down              -          down: not checked",
		"no drift: seoul-edge-1 (checked 12s ago)",
		"Recent heals:",
		"seoul-gw  route  10.2.0.0/16  absent  healed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
