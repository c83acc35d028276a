package edge

import (
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/intercloud/intercloud/edge/httpcache"
	"github.com/intercloud/intercloud/internal/httpsem"
)

// entry is one stored object, immutable once stored: a 304 refresh stores
// a new entry. A vary marker (marker true) sits at the primary key and
// names the fields that pick a variant; variants live under
// primary + gen + vary key, so replacing the marker orphans old variants.
type entry struct {
	key        string
	dist, path string

	marker    bool
	varyNames []string
	gen       uint64

	// producer is the member whose response this is, the only one its
	// validators are sent to; routed is the member the request that
	// stored it was routed to (producer, or the member failed over
	// from). A hit checks routed against the member this request is
	// routed to, so a switch retires the old member's copies at once.
	producer, routed memberID

	status int
	header http.Header
	body   []byte
	// size is the body's length: len(body) in memory, the file's body on
	// disk (disk set, body nil), -1 while a streaming fill of unknown
	// length is growing.
	size         int64
	disk         *diskRef
	requestTime  time.Time
	responseTime time.Time
	initialAge   time.Duration
	fresh        httpcache.Freshness
	clen         []string // Content-Length of the whole body
	gz           *gzipped // the body gzipped, made on first use
	hits         *hitLines
	// fields are header's fields but Content-Length, which a hit sets
	// itself, as a slice: copying it beats ranging over the map. Every
	// change of header is followed by index.
	fields []field
	// validators are header's ETag and Last-Modified as a client's
	// preconditions are evaluated against them, made by index so that a
	// conditional hit parses no date of the entry's.
	validators httpsem.Validators
}

type field struct {
	name   string
	values []string
}

// index makes fields and validators from header.
func (e *entry) index() {
	e.validators = httpsem.Validators{Exists: true}
	if v := e.header["Etag"]; len(v) > 0 {
		e.validators.ETag = v[0]
	}
	if v := e.header["Last-Modified"]; len(v) > 0 {
		if t, err := http.ParseTime(v[0]); err == nil {
			e.validators.LastModified = t
		}
	}
	e.fields = make([]field, 0, len(e.header))
	for k, v := range e.header {
		if k != "Content-Length" {
			e.fields = append(e.fields, field{k, v})
		}
	}
}

// hitLines keeps the Age and Cache-Status values of a plain hit on the
// entry for the second they hold in, so that a popular object formats
// them once a second rather than on every hit.
type hitLines struct{ p atomic.Pointer[hitLine] }

// hitLine is one second's values, shared read-only by concurrent hits.
type hitLine struct {
	age         int64         // Age in seconds
	ttl         time.Duration // the ttl Cache-Status shows
	ageV, cache []string
}

// lines returns the values for a plain hit of the given Age and ttl.
func (l *hitLines) lines(age int64, ttl time.Duration) *hitLine {
	if v := l.p.Load(); v != nil && v.age == age && v.ttl == ttl {
		return v
	}
	cs := httpcache.CacheStatus{Cache: cacheName, Hit: true, HasTTL: true, TTL: ttl}
	v := &hitLine{age: age, ttl: ttl, ageV: ageValue(age), cache: []string{cs.String()}}
	l.p.Store(v)
	return v
}

// finalize precomputes the fields every hit sends, so that a hit copies
// them instead of formatting them.
func (e *entry) finalize() {
	if e.disk == nil && e.body != nil {
		e.size = int64(len(e.body))
	}
	e.clen = nil
	if e.size >= 0 {
		e.clen = []string{strconv.FormatInt(e.size, 10)}
	}
	e.gz = &gzipped{}
	e.hits = &hitLines{}
	// The response came from the origin over HTTP/1.1; Via names that hop
	// (RFC 9110 §7.6.3). Kept in the entry so a hit does not rebuild it.
	// Accept-Ranges is left out: it is advisory and one field more costs
	// every hit a larger header map.
	// A 304 refresh keeps the stored Via, where this hop is already.
	if old := e.header["Via"]; len(old) == 0 || old[len(old)-1] != responseVia {
		via := make([]string, len(old), len(old)+1)
		copy(via, old)
		e.header["Via"] = append(via, responseVia)
	}
	e.index()
}

func (e *entry) cost() int64 {
	n := int64(len(e.body) + len(e.key) + 256)
	for k, vs := range e.header {
		n += int64(len(k))
		for _, v := range vs {
			n += int64(len(v) + 16)
		}
	}
	return n
}

func (e *entry) age(now time.Time) time.Duration {
	return httpcache.CurrentAge(e.initialAge, e.responseTime, now)
}

// retention is how long the store keeps the entry: while fresh, while a
// stale window may use it, and a while longer when it can be revalidated
// cheaply with a validator.
func (e *entry) retention(keepValidated time.Duration) time.Duration {
	life := e.fresh.Lifetime - e.initialAge
	if life < 0 {
		life = 0
	}
	d := life + max(e.fresh.StaleWhileRevalidate, e.fresh.StaleIfError)
	if httpcache.HasValidator(e.header) {
		d += keepValidated
	}
	return d
}
