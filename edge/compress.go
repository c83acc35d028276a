package edge

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"strings"
	"sync"
)

// minCompress is the smallest body worth gzipping.
const minCompress = 256

// gzipped holds an entry's body compressed once, on the first client
// that accepts gzip.
type gzipped struct {
	once sync.Once
	body []byte
}

// compress serves the gzipped body to clients that accept it, for
// compressible types the origin did not encode itself; the answer varies
// on Accept-Encoding either way.
func (x *exchange) compress(ent *entry, h http.Header) []byte {
	if ent.gz == nil || h.Get("Content-Encoding") != "" || len(ent.body) < minCompress || !compressible(h.Get("Content-Type")) {
		return ent.body
	}
	if cc := h.Get("Cache-Control"); strings.Contains(strings.ToLower(cc), "no-transform") {
		return ent.body
	}
	addVary(h, "Accept-Encoding")
	if !acceptsGzip(x.r.Header.Values("Accept-Encoding")) {
		return ent.body
	}
	ent.gz.once.Do(func() {
		var b bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&b, gzip.DefaultCompression)
		zw.Write(ent.body)
		zw.Close()
		ent.gz.body = b.Bytes()
	})
	h["Content-Encoding"] = []string{"gzip"}
	// The encoded representation is not byte-identical: its validator
	// may only be weak.
	if et := h.Get("ETag"); et != "" && !strings.HasPrefix(et, "W/") {
		h["Etag"] = []string{"W/" + et}
	}
	return ent.gz.body
}

func addVary(h http.Header, name string) {
	for _, v := range h.Values("Vary") {
		for _, f := range strings.Split(v, ",") {
			if f = strings.TrimSpace(f); strings.EqualFold(f, name) || f == "*" {
				return
			}
		}
	}
	old := h["Vary"]
	nv := make([]string, len(old), len(old)+1)
	copy(nv, old)
	h["Vary"] = append(nv, name)
}

func compressible(ct string) bool {
	ct = strings.ToLower(ct)
	for _, p := range []string{"text/", "application/json", "application/javascript", "application/xml", "image/svg+xml", "application/wasm"} {
		if strings.HasPrefix(ct, p) || strings.Contains(ct, "+json") || strings.Contains(ct, "+xml") {
			return true
		}
	}
	return false
}

// acceptsGzip: gzip (or *) listed with a non-zero q.
func acceptsGzip(values []string) bool {
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
			coding = strings.ToLower(strings.TrimSpace(coding))
			if coding != "gzip" && coding != "*" {
				continue
			}
			q := strings.ReplaceAll(strings.ToLower(params), " ", "")
			if q == "q=0" || q == "q=0.0" || q == "q=0.00" || q == "q=0.000" {
				continue
			}
			return true
		}
	}
	return false
}
