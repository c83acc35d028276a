package origin

import (
	"net/http"
	"strings"
	"testing"
)

// discardWriter is a ResponseWriter that keeps nothing, to time the
// handler alone, without the network.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(int)             {}

func benchHandler(b *testing.B, path string, mod func(*Config)) {
	o := newOrigin(b, map[string]string{"small.bin": strings.Repeat("x", 1024)}, mod)
	h := o.srv.Handler()
	req, _ := http.NewRequest("GET", path, nil)
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, req)
	}
}

func BenchmarkHandlerMemory(b *testing.B) { benchHandler(b, "/small.bin", nil) }
func BenchmarkHandlerDisk(b *testing.B) {
	benchHandler(b, "/small.bin", func(c *Config) { c.Revalidate = -1 })
}
