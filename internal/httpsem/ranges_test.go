package httpsem

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseRange(t *testing.T) {
	tests := []struct {
		in      string
		want    []rangeSpec
		wantErr bool
		notByte bool
	}{
		{in: "bytes=0-499", want: []rangeSpec{{First: 0, Last: 499}}},
		{in: "bytes=500-999", want: []rangeSpec{{First: 500, Last: 999}}},
		{in: "bytes=-500", want: []rangeSpec{{First: -1, Last: -1, Suffix: 500}}},
		{in: "bytes=9500-", want: []rangeSpec{{First: 9500, Last: -1}}},
		{in: "bytes=0-0,-1", want: []rangeSpec{{First: 0, Last: 0}, {First: -1, Last: -1, Suffix: 1}}},
		{in: "bytes=500-600,601-999", want: []rangeSpec{{First: 500, Last: 600}, {First: 601, Last: 999}}},
		{in: "bytes= 0-1 ,\t2-3", want: []rangeSpec{{First: 0, Last: 1}, {First: 2, Last: 3}}},
		{in: "bytes=0-1,,,2-3,", want: []rangeSpec{{First: 0, Last: 1}, {First: 2, Last: 3}}},
		{in: "BYTES=0-1", want: []rangeSpec{{First: 0, Last: 1}}},
		{in: "bytes=5-5", want: []rangeSpec{{First: 5, Last: 5}}},
		{in: "bytes=-0", want: []rangeSpec{{First: -1, Last: -1, Suffix: 0}}},
		{in: "bytes=007-010", want: []rangeSpec{{First: 7, Last: 10}}},
		{in: "bytes=99999999999999999999-", want: []rangeSpec{{First: posLimit, Last: -1}}},
		{in: "bytes=0-99999999999999999999", want: []rangeSpec{{First: 0, Last: posLimit}}},
		{in: "items=0-5", notByte: true, wantErr: true},
		{in: "bytes=5-4", wantErr: true},
		{in: "bytes=99999999999999999999-99999999999999999998", wantErr: true},
		{in: "bytes=", wantErr: true},
		{in: "bytes=,", wantErr: true},
		{in: "bytes", wantErr: true},
		{in: "bytes=-", wantErr: true},
		{in: "bytes=a-b", wantErr: true},
		{in: "bytes=1-2-3", wantErr: true},
		{in: "bytes=+1-2", wantErr: true},
		{in: "bytes=1--2", wantErr: true},
		{in: "bytes=--1", wantErr: true},
		{in: "bytes=0x10-", wantErr: true},
		{in: "bytes =0-1", wantErr: true},
		{in: " bytes=0-1", wantErr: true},
		{in: "bytes=1 -2", wantErr: true},
		{in: "bytes=0-1;2-3", wantErr: true},
		{in: "=0-1", wantErr: true},
		{in: "bytes=" + strings.Repeat("0-0,", maxRangeSpecs+1), wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseRange(tt.in)
		if tt.wantErr {
			if err == nil {
				t.Errorf("parseRange(%q) = %v, want an error", tt.in, got)
			}
			if tt.notByte != errors.Is(err, errNotBytes) {
				t.Errorf("parseRange(%q): err %v, errNotBytes expected %v", tt.in, err, tt.notByte)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseRange(%q): %v", tt.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseRange(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestResolveRanges(t *testing.T) {
	tests := []struct {
		name string
		in   string
		size int64
		want []ByteRange
	}{
		{"first 500", "bytes=0-499", 10000, []ByteRange{{0, 500}}},
		{"second 500", "bytes=500-999", 10000, []ByteRange{{500, 500}}},
		{"suffix", "bytes=-500", 10000, []ByteRange{{9500, 500}}},
		{"open end", "bytes=9500-", 10000, []ByteRange{{9500, 500}}},
		{"last beyond end is clamped", "bytes=9000-20000", 10000, []ByteRange{{9000, 1000}}},
		{"suffix longer than file is whole file", "bytes=-20000", 10000, []ByteRange{{0, 10000}}},
		{"first byte and last byte", "bytes=0-0,-1", 10000, []ByteRange{{0, 1}, {9999, 1}}},
		{"first-pos at length unsatisfiable", "bytes=10000-", 10000, []ByteRange{}},
		{"first-pos past length unsatisfiable", "bytes=20000-30000", 10000, []ByteRange{}},
		{"zero suffix unsatisfiable", "bytes=-0", 10000, []ByteRange{}},
		{"unsatisfiable dropped, rest kept", "bytes=20000-,0-9", 10000, []ByteRange{{0, 10}}},
		{"adjacent coalesced", "bytes=500-600,601-999", 10000, []ByteRange{{500, 500}}},
		{"overlap coalesced", "bytes=0-10,5-20", 100, []ByteRange{{0, 21}}},
		{"out of order kept", "bytes=50-59,0-9", 100, []ByteRange{{50, 10}, {0, 10}}},
		{"chain coalesces back", "bytes=0-9,20-29,10-19", 100, []ByteRange{{0, 30}}},
		{"same range many times", "bytes=0-9,0-9,0-9", 100, []ByteRange{{0, 10}}},
		{"huge first-pos", "bytes=99999999999999999999-", 100, []ByteRange{}},
		{"huge last-pos", "bytes=90-99999999999999999999", 100, []ByteRange{{90, 10}}},
		{"one byte file", "bytes=0-", 1, []ByteRange{{0, 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			specs, err := parseRange(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			got := resolveRanges(specs, tt.size)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("resolveRanges(%q, %d) = %v, want %v", tt.in, tt.size, got, tt.want)
			}
		})
	}
}

// FuzzParseRange checks that any header parses or fails cleanly, and that
// what it resolves to always lies inside the representation, never
// overlaps and never exceeds it in total.
func FuzzParseRange(f *testing.F) {
	for _, s := range []string{
		"bytes=0-499", "bytes=-500", "bytes=9500-", "bytes=0-0,-1", "bytes=500-600,601-999",
		"bytes=5-4", "items=1-2", "bytes=", "bytes=,,,", "bytes=99999999999999999999-",
		"bytes=0-1,0-1,0-1", "bytes= 1-2 , 3-4", "BYTES=1-", "bytes=-0", "bytes=1-2-3",
	} {
		f.Add(s, int64(10000))
	}
	f.Fuzz(func(t *testing.T, v string, size int64) {
		specs, err := parseRange(v)
		if err != nil {
			if specs != nil {
				t.Fatalf("error %v with specs %v", err, specs)
			}
			return
		}
		if len(specs) == 0 || len(specs) > maxRangeSpecs {
			t.Fatalf("%d specs", len(specs))
		}
		if size < 0 {
			size = -size
		}
		if size < 0 { // MinInt64
			size = 0
		}
		rs := resolveRanges(specs, size)
		var total int64
		for i, r := range rs {
			if r.Start < 0 || r.Length <= 0 || r.Start+r.Length > size {
				t.Fatalf("range %+v outside a %d-byte representation (%q)", r, size, v)
			}
			for _, o := range rs[i+1:] {
				if r.Start <= o.Start+o.Length && o.Start <= r.Start+r.Length {
					t.Fatalf("ranges %+v and %+v overlap or touch (%q)", r, o, v)
				}
			}
			total += r.Length
		}
		if total > size {
			t.Fatalf("ranges total %d bytes of %d", total, size)
		}
	})
}
