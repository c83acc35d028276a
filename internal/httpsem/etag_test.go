package httpsem

import (
	"reflect"
	"strings"
	"testing"
)

// members walks a whole list the way the precondition logic does.
func members(lines []string) []string {
	var out []string
	l := etagList{lines: lines}
	for {
		t, ok := l.next()
		if !ok {
			return out
		}
		out = append(out, t)
	}
}

func TestETagList(t *testing.T) {
	tests := []struct {
		in   []string
		want []string
	}{
		// RFC 9110 §13.1.1 and §13.1.2 examples.
		{[]string{`"xyzzy"`}, []string{`"xyzzy"`}},
		{[]string{`"xyzzy", "r2d2xxxx", "c3piozzzz"`}, []string{`"xyzzy"`, `"r2d2xxxx"`, `"c3piozzzz"`}},
		{[]string{`W/"xyzzy", W/"r2d2xxxx", W/"c3piozzzz"`}, []string{`W/"xyzzy"`, `W/"r2d2xxxx"`, `W/"c3piozzzz"`}},
		{[]string{`*`}, []string{"*"}},
		{[]string{` * `}, []string{"*"}},

		// An opaque-tag may hold commas and spaces are not etagc.
		{[]string{`"a,b", "c"`}, []string{`"a,b"`, `"c"`}},
		{[]string{`W/",", ",,"`}, []string{`W/","`, `",,"`}},
		{[]string{`"a b"`}, nil},

		{[]string{`"a", W/"b" ,"c"`}, []string{`"a"`, `W/"b"`, `"c"`}},
		{[]string{`"a"`, `"b"`}, []string{`"a"`, `"b"`}},
		{[]string{`""`}, []string{`""`}},
		{[]string{`,,"a",,`}, []string{`"a"`}},
		{[]string{``, `"a"`}, []string{`"a"`}},
		{[]string{"\t\"a\"\t,\t\"b\""}, []string{`"a"`, `"b"`}},
		{[]string{"\"\xc3\xa9\""}, []string{"\"\xc3\xa9\""}}, // obs-text

		// A malformed element ends the list, across lines too; a tag
		// that is well-formed before the junk still counts.
		{[]string{`"a" "b"`}, []string{`"a"`}},
		{[]string{`"a`}, nil},
		{[]string{`w/"a"`}, nil},
		{[]string{`W/ "a"`}, nil},
		{[]string{`abc, "a"`}, nil},
		{[]string{`"a", abc, "b"`}, []string{`"a"`}},
		{[]string{`"a", abc`, `"b"`}, []string{`"a"`}},
		{[]string{`*x`, `"b"`}, nil},
		{[]string{`"a"x`, `"b"`}, []string{`"a"`}},
		{[]string{"\"a\x7f\""}, nil},
		{[]string{"\"a\"b\""}, []string{`"a"`}},
	}
	for _, tt := range tests {
		if got := members(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("members(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestComparison is the table of RFC 9110 §8.8.3.2.
func TestComparison(t *testing.T) {
	tests := []struct {
		a, b           string
		strong, weakly bool
	}{
		{`W/"1"`, `W/"1"`, false, true},
		{`W/"1"`, `W/"2"`, false, false},
		{`W/"1"`, `"1"`, false, true},
		{`"1"`, `"1"`, true, true},
		{`"a,b"`, `"a,b"`, true, true},
		{`"1"`, `"2"`, false, false},
		{`""`, `""`, true, true},
		{`"1"`, ``, false, false},
		{``, ``, false, false},
	}
	for _, tt := range tests {
		if got := strongMatch(tt.a, tt.b); got != tt.strong {
			t.Errorf("strongMatch(%s, %s) = %v", tt.a, tt.b, got)
		}
		if got := weakMatch(tt.a, tt.b); got != tt.weakly {
			t.Errorf("weakMatch(%s, %s) = %v", tt.a, tt.b, got)
		}
		// Both comparisons are symmetric.
		if strongMatch(tt.b, tt.a) != tt.strong || weakMatch(tt.b, tt.a) != tt.weakly {
			t.Errorf("(%s, %s): comparison is not symmetric", tt.a, tt.b)
		}
	}
}

func TestListMatches(t *testing.T) {
	tests := []struct {
		lines        []string
		etag         string
		strong, weak bool
	}{
		{[]string{`"a,b", "c"`}, `"a,b"`, true, true},
		{[]string{`"a,b", "c"`}, `"a"`, false, false},
		{[]string{`"a,b", "c"`}, `"c"`, true, true},
		{[]string{`"x", W/"a"`}, `"a"`, false, true},
		{[]string{`"x", W/"a"`}, `W/"a"`, false, true},
		{[]string{`*`}, `"a"`, true, true},
		{[]string{`*`}, ``, true, true},
		{[]string{`junk, "a"`}, `"a"`, false, false},
		{[]string{`"x"`, `"a"`}, `"a"`, true, true},
		{nil, `"a"`, false, false},
	}
	for _, tt := range tests {
		if got := listMatches(tt.lines, tt.etag, true); got != tt.strong {
			t.Errorf("listMatches(%q, %s, strong) = %v", tt.lines, tt.etag, got)
		}
		if got := listMatches(tt.lines, tt.etag, false); got != tt.weak {
			t.Errorf("listMatches(%q, %s, weak) = %v", tt.lines, tt.etag, got)
		}
	}
}

// TestListMatchesAllocatesNothing: the edge walks a client's list on
// every conditional cache hit.
func TestListMatchesAllocatesNothing(t *testing.T) {
	lines := []string{`"x", W/"y", "a,b"`, ` "z" ,, *`}
	if n := testing.AllocsPerRun(100, func() {
		if !listMatches(lines, `"z"`, false) {
			t.Fatal("no match")
		}
	}); n > 0 {
		t.Errorf("%.0f allocations per walk", n)
	}
}

// FuzzETagList: any field value walks to members that are "*" or exactly
// one entity-tag each, taken in order from the value itself.
func FuzzETagList(f *testing.F) {
	for _, s := range []string{`"xyzzy", "r2d2xxxx"`, `W/"a", W/"b"`, `*`, `"a,b", "c"`, `,,"a",,`, `"a" "b"`,
		`"a`, `W/`, `*x`, `"é"`, "\"\x00\"", `W/"`, `""`} {
		f.Add(s, `"a"`)
	}
	f.Fuzz(func(t *testing.T, v, etag string) {
		rest := v
		for _, m := range members([]string{v}) {
			if m != "*" && !validETag(m) {
				t.Fatalf("%q yields %q, not one entity-tag", v, m)
			}
			i := strings.Index(rest, m)
			if i < 0 {
				t.Fatalf("%q yields %q out of order", v, m)
			}
			rest = rest[i+len(m):]
		}
		// A strong match is a weak match too.
		if listMatches([]string{v}, etag, true) && !listMatches([]string{v}, etag, false) {
			t.Fatalf("%q matches %q strongly but not weakly", v, etag)
		}
	})
}
