package edge

import (
	"strconv"
	"testing"
)

// FuzzSliceRanges: the origin's Content-Range and the client's Range as
// the slice fill reads them never panic, and what is accepted is sane.
func FuzzSliceRanges(f *testing.F) {
	for _, s := range []string{"bytes 0-1023/4096", "bytes 4095-4095/4096", "bytes 5-4/10", "bytes */10", "bytes 0-9/10/1",
		"bytes=100-", "bytes=-500", "bytes=0-0,5-9", "bytes=18446744073709551615-", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if first, last, total, ok := parseContentRange(v); ok {
			if first < 0 || last < first || total <= last {
				t.Fatalf("accepted %q as %d-%d/%d", v, first, last, total)
			}
			if back := "bytes " + strconv.FormatInt(first, 10) + "-" + strconv.FormatInt(last, 10) + "/" + strconv.FormatInt(total, 10); back != v {
				if _, _, _, ok := parseContentRange(back); !ok {
					t.Fatalf("%q accepted, its canonical form %q not", v, back)
				}
			}
		}
		if n := rangeStart(v); n < 0 {
			t.Fatalf("rangeStart(%q) = %d", v, n)
		}
	})
}
