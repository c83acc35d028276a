package origin

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// testOrigin is a real server on a loopback port over a temporary root.
type testOrigin struct {
	t     testing.TB
	root  string
	srv   *Server
	url   string
	reg   *prometheus.Registry
	token string
}

const testToken = "s3cr3t-t0ken-for-tests"

func writeTree(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// deployTree writes files to a fresh source directory and deploys it.
func deployTree(t testing.TB, root, version string, files map[string]string) string {
	t.Helper()
	src := t.TempDir()
	writeTree(t, src, files)
	res, err := Deploy(root, src, version)
	if err != nil {
		t.Fatalf("deploy %s: %v", version, err)
	}
	return res.Version
}

// newOrigin deploys files as version v1, activates it and starts a server.
func newOrigin(t testing.TB, files map[string]string, mod func(*Config)) *testOrigin {
	t.Helper()
	root := filepath.Join(t.TempDir(), "root")
	if files != nil {
		deployTree(t, root, "v1", files)
		if err := Activate(root, "v1"); err != nil {
			t.Fatal(err)
		}
	}
	cfg := Config{Root: root, Listen: "127.0.0.1:0"}
	if mod != nil {
		mod(&cfg)
	}
	reg := prometheus.NewRegistry()
	srv, err := New(cfg, Options{
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		Registry: reg, Gatherer: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return &testOrigin{t: t, root: root, srv: srv, url: "http://" + srv.Addr().String(), reg: reg}
}

// withToken enables uploads with testToken.
func withToken(t *testing.T) func(*Config) {
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte(testToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return func(c *Config) { c.TokenFile = p }
}

// do sends one request; kv are header name/value pairs.
func (o *testOrigin) do(method, path string, body io.Reader, kv ...string) (*http.Response, string) {
	o.t.Helper()
	req, err := http.NewRequest(method, o.url+path, body)
	if err != nil {
		o.t.Fatal(err)
	}
	for i := 0; i < len(kv); i += 2 {
		req.Header.Add(kv[i], kv[i+1])
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		o.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		o.t.Fatalf("%s %s: body: %v", method, path, err)
	}
	return resp, string(b)
}

// raw sends a request line as given, bypassing any client-side cleaning.
func (o *testOrigin) raw(requestTarget string) (*http.Response, string) {
	o.t.Helper()
	c, err := net.Dial("tcp", o.srv.Addr().String())
	if err != nil {
		o.t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET "+requestTarget+" HTTP/1.1\r\nHost: origin\r\nConnection: close\r\n\r\n"); err != nil {
		o.t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		o.t.Fatalf("GET %s: %v", requestTarget, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func (o *testOrigin) counter(name string, labels ...string) float64 {
	o.t.Helper()
	mfs, err := o.reg.Gather()
	if err != nil {
		o.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.Metric {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.Label {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue metric
				}
			}
			if m.Counter != nil {
				return m.Counter.GetValue()
			}
			if m.Gauge != nil {
				return m.Gauge.GetValue()
			}
		}
	}
	return 0
}

// activate flips the pointer and waits until the server has seen it (the
// inotify watch delivers it within microseconds; the 1 s re-read backs it).
func (o *testOrigin) activate(version string) {
	o.t.Helper()
	if err := Activate(o.root, version); err != nil {
		o.t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if v, _ := o.srv.activeVersion(); v == version {
			return
		}
		if time.Now().After(deadline) {
			o.t.Fatalf("the server never saw version %s activated", version)
		}
		time.Sleep(time.Millisecond)
	}
}
