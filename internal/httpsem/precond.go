// Package httpsem holds the request-header decisions of RFC 9110 that the
// origin server and the edge cache share: entity-tag lists and their
// comparison, preconditions, If-Range and byte ranges. Pure functions over
// a header and a representation's validators; see README.md.
package httpsem

import (
	"net/http"
	"time"
)

// Validators describe the selected representation to the precondition
// logic. Exists is false when the target has no current representation
// (a PUT that creates, a DELETE of nothing).
type Validators struct {
	Exists bool
	// ETag is the entity-tag as the ETag field sends it, with its quotes
	// and W/ when weak; "" when none. A malformed one counts as none.
	ETag string
	// LastModified is at one-second resolution; zero when unknown.
	LastModified time.Time
}

// Outcome of evaluating preconditions.
type Outcome int

const (
	// Proceed: perform the method (ranges are decided afterwards).
	Proceed Outcome = iota
	// NotModified: answer 304.
	NotModified
	// PreconditionFailed: answer 412.
	PreconditionFailed
)

// Preconditions applies RFC 9110 §13.2.2 steps 1 to 4 in order:
// If-Match, else If-Unmodified-Since; then If-None-Match, else
// If-Modified-Since (GET and HEAD only). h must have canonical keys, as
// servers give them: the fields are read without canonicalising.
func Preconditions(method string, h http.Header, v Validators) Outcome {
	safe := method == http.MethodGet || method == http.MethodHead
	if im, ok := h["If-Match"]; ok {
		if !ifMatch(im, v) {
			return PreconditionFailed
		}
	} else if t, ok := singleDate(h, "If-Unmodified-Since"); ok && v.Exists && !v.LastModified.IsZero() {
		if v.LastModified.After(t) {
			return PreconditionFailed
		}
	}
	if inm, ok := h["If-None-Match"]; ok {
		if !ifNoneMatch(inm, v) {
			if safe {
				return NotModified
			}
			return PreconditionFailed
		}
	} else if t, ok := singleDate(h, "If-Modified-Since"); ok && safe && v.Exists && !v.LastModified.IsZero() {
		if !v.LastModified.After(t) {
			return NotModified
		}
	}
	return Proceed
}

// ifMatch is true when a representation exists and the field lists "*"
// or a tag that strongly matches its own (RFC 9110 §13.1.1).
func ifMatch(lines []string, v Validators) bool {
	return v.Exists && listMatches(lines, v.etag(), true)
}

// ifNoneMatch is false when a representation exists and the field lists
// "*" or a tag that weakly matches its own (RFC 9110 §13.1.2).
func ifNoneMatch(lines []string, v Validators) bool {
	return !v.Exists || !listMatches(lines, v.etag(), false)
}

// etag is ETag when it is well-formed: a malformed one from another
// server must not match a client's equally malformed list element.
func (v Validators) etag() string {
	if validETag(v.ETag) {
		return v.ETag
	}
	return ""
}

// singleDate returns a date header that is present exactly once and is a
// valid HTTP-date; otherwise the header is ignored, as RFC 9110 §13.1.3 and
// §13.1.4 require (a list of dates is not a valid HTTP-date).
func singleDate(h http.Header, name string) (time.Time, bool) {
	vs := h[name]
	if len(vs) != 1 {
		return time.Time{}, false
	}
	t, err := http.ParseTime(vs[0])
	if err != nil {
		return time.Time{}, false
	}
	return t, true
}

// ifRange evaluates an If-Range value (RFC 9110 §13.1.5): an entity-tag
// must strongly match; an HTTP-date must equal Last-Modified exactly.
// Anything else (weak tag, bad date) is false, which makes the server send
// the whole representation.
func ifRange(value string, v Validators) bool {
	if value == "" || !v.Exists {
		return false
	}
	if value[0] == '"' || (len(value) > 1 && value[:2] == "W/") {
		tag, rest, ok := scanETag(value)
		return ok && trimOWS(rest) == "" && strongMatch(tag, v.etag())
	}
	t, err := http.ParseTime(value)
	if err != nil || v.LastModified.IsZero() {
		return false
	}
	// Exact equality is what RFC 9110 §13.1.5 asks of the recipient; that
	// the date be a strong validator is asked of the client sending it.
	return t.Equal(v.LastModified)
}

// Fields are the request fields Decide reads, canonical. A cache that
// answers them itself keeps them from the origin request by this list, so
// it cannot drift from what is evaluated.
var Fields = [...]string{"If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since", "If-Range", "Range"}

// Decision is what a GET or HEAD of an existing representation answers.
type Decision struct {
	Status int
	// Ranges holds the parts of a 206, in the order they are sent.
	Ranges []ByteRange
}

// Decide is the whole request-header logic for GET and HEAD of a
// representation of size bytes: preconditions, then If-Range and Range.
// Without a Range field it allocates nothing. It never looks at anything
// but its arguments, so it is tested as a table.
func Decide(method string, h http.Header, v Validators, size int64) Decision {
	switch Preconditions(method, h, v) {
	case NotModified:
		return Decision{Status: http.StatusNotModified}
	case PreconditionFailed:
		return Decision{Status: http.StatusPreconditionFailed}
	}
	// Range is defined for GET only (RFC 9110 §14.2): HEAD gets 200.
	rv, ok := h["Range"]
	if method != http.MethodGet || !ok {
		return Decision{Status: http.StatusOK}
	}
	if len(rv) != 1 {
		// Several Range lines do not form a valid ranges-specifier.
		return Decision{Status: http.StatusOK}
	}
	if ir, ok := h["If-Range"]; ok {
		if len(ir) != 1 || !ifRange(ir[0], v) {
			return Decision{Status: http.StatusOK}
		}
	}
	specs, err := parseRange(rv[0])
	if err != nil {
		// Other units and invalid specifiers are ignored (RFC 9110 §14.2).
		return Decision{Status: http.StatusOK}
	}
	if size == 0 {
		// A zero-length representation has no byte to address; the only
		// "satisfiable" form (a suffix) would be the whole, empty body.
		for _, s := range specs {
			if s.First < 0 && s.Suffix > 0 {
				return Decision{Status: http.StatusOK}
			}
		}
		return Decision{Status: http.StatusRequestedRangeNotSatisfiable}
	}
	rs := resolveRanges(specs, size)
	if len(rs) == 0 {
		return Decision{Status: http.StatusRequestedRangeNotSatisfiable}
	}
	return Decision{Status: http.StatusPartialContent, Ranges: rs}
}
