package edge

import (
	"context"
	"github.com/intercloud/intercloud/role"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkServeHit measures the handler's own cost of a cache hit,
// without the network (the side-by-side figures are in bench/edge).
func BenchmarkServeHit(b *testing.B) {
	b.Run("plain", func(b *testing.B) { benchHit(b, nil, nil) })
	// A variant: its key is built, the browser's Accept-Encoding
	// normalised (from the memo after the first).
	b.Run("vary", func(b *testing.B) {
		benchHit(b, []string{"Vary", "Accept-Encoding"}, []string{"Accept-Encoding", "gzip, deflate, br, zstd"})
	})
}

func benchHit(b *testing.B, respKV, reqKV []string) {
	o := httptest.NewServer(body(string(make([]byte, 1024)), append([]string{"Cache-Control", "max-age=3600", "ETag", `"b"`}, respKV...)...))
	defer o.Close()
	e, err := New(Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close(context.Background())
	snap := site(1, simple(o.URL))
	snap.Site.Nodes = nil
	if err := role.Apply(context.Background(), e, snap); err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest("GET", "http://shop.cdn.test/hit", nil)
	for i := 0; i+1 < len(reqKV); i += 2 {
		req.Header.Set(reqKV[i], reqKV[i+1])
	}
	e.ServeHTTP(httptest.NewRecorder(), req)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w := &discardWriter{h: http.Header{}}
		e.ServeHTTP(w, req)
		if w.code != 200 {
			b.Fatal(w.code)
		}
	}
}

type discardWriter struct {
	h    http.Header
	code int
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(c int)           { d.code = c }
