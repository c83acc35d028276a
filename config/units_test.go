package config

import (
	"encoding/json"
	"testing"
	"time"
)

// The JSON forms of durations and sizes take the fast paths for plain
// values and still decode anything valid JSON may spell them as.
func TestUnitsJSON(t *testing.T) {
	durations := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{`"90s"`, 90 * time.Second, true},
		{`"1h30m"`, 90 * time.Minute, true},
		{`"1\u0068"`, time.Hour, true}, // an escape: decoded, not taken as is
		{`"0s"`, 0, true},
		{`"bogus"`, 0, false},
		{`"1h`, 0, false},
		{`12`, 0, false},
		{`""`, 0, false},
	}
	for _, c := range durations {
		var d Duration
		err := json.Unmarshal([]byte(c.in), &d)
		if (err == nil) != c.ok || (c.ok && d.D() != c.want) {
			t.Errorf("Duration %s: %v, %v; want %v ok=%v", c.in, d.D(), err, c.want, c.ok)
		}
		if c.ok {
			b, _ := json.Marshal(d)
			var back Duration
			if err := json.Unmarshal(b, &back); err != nil || back != d {
				t.Errorf("Duration %s: round trip through %s gave %v, %v", c.in, b, back, err)
			}
		}
	}
	sizes := []struct {
		in   string
		want Size
		ok   bool
	}{
		{`4096`, 4096, true},
		{`-1`, -1, true},
		{`"64MiB"`, 64 << 20, true},
		{`"64Mi\u0042"`, 64 << 20, true},
		{`1.5`, 0, false},
		{`"many"`, 0, false},
	}
	for _, c := range sizes {
		var s Size
		err := json.Unmarshal([]byte(c.in), &s)
		if (err == nil) != c.ok || (c.ok && s != c.want) {
			t.Errorf("Size %s: %v, %v; want %v ok=%v", c.in, s, err, c.want, c.ok)
		}
		if b, _ := json.Marshal(c.want); c.ok && string(b) != jsonInt(int64(c.want)) {
			t.Errorf("Size %v encodes as %s", c.want, b)
		}
	}
}

func jsonInt(n int64) string { b, _ := json.Marshal(n); return string(b) }
