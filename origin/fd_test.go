package origin

import (
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

func openFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(ents)
}

// TestNoDescriptorLeak runs every kind of request, on disk and from
// memory, and checks that the process holds no more descriptors after
// than before (connections closed).
func TestNoDescriptorLeak(t *testing.T) {
	for name, revalidate := range map[string]time.Duration{"disk": -1, "memory": 0} {
		t.Run(name, func(t *testing.T) {
			o := newOrigin(t, site, func(c *Config) { withToken(t)(c); c.Revalidate = revalidate })
			tr := &http.Transport{}
			client := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			req := func(method, path string, kv ...string) {
				r, _ := http.NewRequest(method, o.url+path, strings.NewReader("body"))
				for i := 0; i < len(kv); i += 2 {
					r.Header.Set(kv[i], kv[i+1])
				}
				resp, err := client.Do(r)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
			}
			req("GET", "/") // warm up lazily opened runtime descriptors
			tr.CloseIdleConnections()
			before := openFDs(t)
			for i := 0; i < 20; i++ {
				req("GET", "/")
				req("GET", "/docs")
				req("GET", "/docs/")
				req("HEAD", "/data/big.bin")
				req("GET", "/data/big.bin", "Range", "bytes=0-10,500-600")
				req("GET", "/data/big.bin", "Range", "bytes=999999-")
				req("GET", "/data/blob", "If-None-Match", "*")
				req("GET", "/missing")
				req("GET", "/data/")
				req("PUT", "/x.txt", "Authorization", "Bearer "+testToken, VersionHeader, "v2")
				req("DELETE", "/x.txt", "Authorization", "Bearer "+testToken, VersionHeader, "v2")
			}
			tr.CloseIdleConnections()
			// The server side of each connection closes once it reads EOF.
			deadline := time.Now().Add(10 * time.Second)
			for openFDs(t) > before {
				if time.Now().After(deadline) {
					t.Fatalf("descriptors: %d before, %d after", before, openFDs(t))
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}
