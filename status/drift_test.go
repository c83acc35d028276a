package status

import (
	"slices"
	"testing"

	"github.com/intercloud/intercloud/config"
)

func TestDriftReportUnresolved(t *testing.T) {
	res := func(states ...string) *DriftReport {
		r := &DriftReport{}
		for _, s := range states {
			r.Resources = append(r.Resources, DriftResource{Kind: DriftRoute, ID: "10.2.0.0/16", State: s})
		}
		return r
	}
	for _, c := range []struct {
		name string
		rep  *DriftReport
		want int
	}{
		{"no report", nil, 0},
		{"nothing drifted", res(), 0},
		{"all healed", res(DriftHealed, DriftHealed), 0},
		{"every other state counts", res(DriftReported, DriftHealed, DriftHealError, DriftSuspended), 3},
	} {
		if got := c.rep.Unresolved(); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
}

// The kinds a report carries are the site's kinds, each once.
func TestDriftKindsAreTheSites(t *testing.T) {
	ours := []string{DriftRoute, DriftWireguard, DriftBGP, DriftListener, DriftCertificate, DriftFile}
	var site []string
	for _, k := range config.DriftKinds {
		site = append(site, string(k))
	}
	if !slices.Equal(ours, site) {
		t.Fatalf("status kinds %v, config.DriftKinds %v", ours, site)
	}
}
