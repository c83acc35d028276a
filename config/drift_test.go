package config

import (
	"reflect"
	"testing"
)

func TestDriftDefaultsAndHeals(t *testing.T) {
	s := &Snapshot{Site: Site{Drift: DriftPolicy{Heal: []DriftKind{"route", "file"}}}}
	s.SetDefaults()
	p := s.Site.Drift
	if p.Interval != DefaultDriftInterval || p.MaxHeals != DefaultDriftMaxHeals || p.Window != DefaultDriftWindow {
		t.Fatalf("defaults: %+v", p)
	}
	for kind, want := range map[string]bool{"route": true, "file": true, "wireguard": false, "listener": false} {
		if p.Heals(kind) != want {
			t.Errorf("Heals(%q) = %v", kind, !want)
		}
	}
	// Every kind has a heal test somewhere; the list is the enum of the
	// decoder and of the validation.
	if len(enums[reflect.TypeFor[DriftKind]()]) != len(DriftKinds) {
		t.Fatalf("decoder enum %v", enums[reflect.TypeFor[DriftKind]()])
	}
}
