package edge

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestCompress(t *testing.T) {
	clk := &clock{}
	text := strings.Repeat("compress me please ", 100)
	o := newOrigin(t, clk, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("ETag", `"t"`)
		if r.URL.Path == "/bin" {
			w.Header().Set("Content-Type", "image/png")
		} else {
			w.Header().Set("Content-Type", "text/plain")
		}
		io.WriteString(w, text)
	})
	d := simple(o.URL)
	d.Spec.Behaviors[0].Compress = true
	h := newHarness(t, clk, site(1, d))
	h.c.Transport = &http.Transport{DisableCompression: true}
	tests := []struct {
		path, ae string
		gz       bool
	}{
		{"/t", "gzip, br", true},
		{"/t", "", false},
		{"/t", "gzip;q=0", false},
		{"/t", "*", true},
		{"/bin", "gzip", false},
	}
	for _, tt := range tests {
		t.Run(tt.path+"|"+tt.ae, func(t *testing.T) {
			var kv []string
			if tt.ae != "" {
				kv = []string{"Accept-Encoding", tt.ae}
			}
			r := h.get(tt.path, kv...)
			if got := r.header.Get("Content-Encoding") == "gzip"; got != tt.gz {
				t.Fatalf("gzip = %v want %v", got, tt.gz)
			}
			b := r.body
			if tt.gz {
				zr, err := gzip.NewReader(bytes.NewReader([]byte(r.body)))
				if err != nil {
					t.Fatal(err)
				}
				ub, _ := io.ReadAll(zr)
				b = string(ub)
				if r.header.Get("ETag") != `W/"t"` {
					t.Fatalf("etag %q", r.header.Get("ETag"))
				}
			}
			if b != text {
				t.Fatalf("body differs (%d bytes)", len(b))
			}
			if tt.path == "/t" && !strings.Contains(r.header.Get("Vary"), "Accept-Encoding") {
				t.Fatalf("Vary %q", r.header.Get("Vary"))
			}
		})
	}
	if o.count() != 2 {
		t.Fatalf("origin requests %d, want 2", o.count())
	}
}
