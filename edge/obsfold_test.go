package edge

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/intercloud/intercloud/role"
)

// keepAliveOrigin answers every request with the bytes head(path) returns (a
// status line and fields, CRLF-terminated, without the blank line), a
// Content-Length and a body, keeping connections alive: what no Go
// server would write, such as folded field lines.
type keepAliveOrigin struct {
	url   string
	head  func(path string) string
	mu    sync.Mutex
	reqs  map[string]int
	conns int
}

func (o *keepAliveOrigin) count(path string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.reqs[path]
}

func newKeepAliveOrigin(t *testing.T, tlsConf *tls.Config, head func(path string) string) *keepAliveOrigin {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &keepAliveOrigin{head: head, reqs: map[string]int{}, url: "http://" + ln.Addr().String()}
	if tlsConf != nil {
		ln = tls.NewListener(ln, tlsConf)
		o.url = "https://" + ln.Addr().String()
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			o.mu.Lock()
			o.conns++
			o.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					o.mu.Lock()
					o.reqs[req.URL.Path]++
					o.mu.Unlock()
					body := "body of " + req.URL.Path
					resp := o.head(req.URL.Path) + fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(body), body)
					if _, err := c.Write([]byte(resp)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return o
}

// TestObsFoldedFreshness: a field freshness depends on that the origin
// folded over two lines (obs-fold) makes the response stale on arrival,
// though Go's client hands the edge its unfolded value, which is valid;
// other folded fields, folds in a 1xx before the final head, and the
// same values on one line change nothing. Each path is asked twice on
// one kept-alive origin connection.
func TestObsFoldedFreshness(t *testing.T) {
	date := time.Now().UTC()
	fields := func(extra string) string {
		return "Date: " + date.Format(http.TimeFormat) + "\r\nETag: \"v\"\r\n" + extra
	}
	// An HTTP-date folded at the space before its time.
	exp := date.Add(time.Hour).Format(http.TimeFormat)
	expFolded := strings.Replace(exp, " ", "\r\n ", 4)
	cases := []struct {
		path, head string
		fresh      bool
	}{
		{"/expires", "HTTP/1.1 200 OK\r\n" + fields("Expires: "+exp+"\r\n"), true},
		{"/expires-folded", "HTTP/1.1 200 OK\r\n" + fields("Expires: "+expFolded+"\r\n"), false},
		{"/expires-folded-tab", "HTTP/1.1 200 OK\r\n" + fields("Expires: "+strings.Replace(exp, " ", "\r\n\t", 4)+"\r\n"), false},
		{"/expires-folded-lf", "HTTP/1.1 200 OK\n" + strings.ReplaceAll(fields("Expires: "+expFolded+"\n"), "\r\n", "\n"), false},
		{"/cache-control-folded", "HTTP/1.1 200 OK\r\n" + fields("Cache-Control: public,\r\n max-age=3600\r\n"), false},
		{"/cache-control-folded-lowercase", "HTTP/1.1 200 OK\r\n" + fields("cache-control: public,\r\n max-age=3600\r\n"), false},
		{"/cdn-cache-control-folded", "HTTP/1.1 200 OK\r\n" + fields("CDN-Cache-Control: max-age=3600,\r\n public\r\n"), false},
		{"/date-folded", "HTTP/1.1 200 OK\r\nDate: " + strings.Replace(date.Format(http.TimeFormat), " ", "\r\n ", 4) + "\r\nETag: \"v\"\r\nCache-Control: max-age=3600\r\n", false},
		{"/age-folded", "HTTP/1.1 200 OK\r\n" + fields("Cache-Control: max-age=3600\r\nAge:\r\n 10\r\n"), false},
		{"/other-folded", "HTTP/1.1 200 OK\r\n" + fields("Cache-Control: max-age=3600\r\nX-Note: one,\r\n two\r\n"), true},
		{"/interim-folded", "HTTP/1.1 103 Early Hints\r\nLink: </a.css>;\r\n rel=preload\r\nExpires:\r\n 0\r\n\r\nHTTP/1.1 200 OK\r\n" + fields("Expires: "+exp+"\r\n"), true},
		{"/final-folded-after-interim", "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\n" + fields("Expires: "+expFolded+"\r\n"), false},
	}
	heads := map[string]string{}
	for _, c := range cases {
		heads[c.path] = c.head
	}
	head := func(p string) string { return heads[p] }

	cert := httptest.NewTLSServer(http.NotFoundHandler())
	defer cert.Close()
	for _, scheme := range []string{"http", "https"} {
		t.Run(scheme, func(t *testing.T) {
			var o *keepAliveOrigin
			e, err := New(Options{Node: "edge-1"})
			if err != nil {
				t.Fatal(err)
			}
			if scheme == "https" {
				o = newKeepAliveOrigin(t, cert.TLS.Clone(), head)
				e.pool.roots = cert.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
			} else {
				o = newKeepAliveOrigin(t, nil, head)
			}
			t.Cleanup(func() { e.Close(context.Background()) })
			if err := role.Apply(context.Background(), e, site(1, simple(o.url))); err != nil {
				t.Fatal(err)
			}
			h := &harness{t: t, e: e, base: "http://" + e.Addrs()["http"], c: &http.Client{Timeout: 10 * time.Second}}
			for _, c := range cases {
				first := h.get(c.path)
				if first.status != 200 || first.body != "body of "+c.path {
					t.Fatalf("%s: %d %q", c.path, first.status, first.body)
				}
				second := h.get(c.path)
				if second.hit() != c.fresh || second.body != first.body {
					t.Errorf("%s asked again: hit %v, want %v (%s; Expires %q)", c.path, second.hit(), c.fresh, second.cs(), first.header.Get("Expires"))
				}
				if want := map[bool]int{true: 1, false: 2}[c.fresh]; o.count(c.path) != want {
					t.Errorf("%s: %d origin requests, want %d", c.path, o.count(c.path), want)
				}
			}
			o.mu.Lock()
			defer o.mu.Unlock()
			if o.conns >= len(cases) {
				// The scan must hold on a reused connection, not only on
				// the first response of each.
				t.Errorf("%d origin connections for %d paths: keep-alive was not exercised", o.conns, len(cases))
			}
		})
	}
}

// TestHeadScan: the folded fields of the final head, whether the head
// arrives in one read or byte by byte, and where the head ends.
func TestHeadScan(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		folded   []string
		ended    bool
	}{
		{"none", "HTTP/1.1 200 OK\r\nExpires: Thu, 01 Dec 1994 16:00:00 GMT\r\n\r\nbody", nil, true},
		{"space", "HTTP/1.1 200 OK\r\nExpires: Thu, 01 Dec 1994\r\n 16:00:00 GMT\r\n\r\n", []string{"Expires"}, true},
		{"tab, LF only", "HTTP/1.1 200 OK\nexpires: Thu, 01 Dec 1994\n\t16:00:00 GMT\n\n", []string{"Expires"}, true},
		{"several, once each", "HTTP/1.1 200 OK\r\nCache-Control: a,\r\n b,\r\n c\r\nAge:\r\n 1\r\n\r\n", []string{"Cache-Control", "Age"}, true},
		{"only the interim's", "HTTP/1.1 103 Early Hints\r\nExpires:\r\n 0\r\n\r\nHTTP/1.1 200 OK\r\nDate: x\r\n\r\n", nil, true},
		{"final after interim", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nDate: Thu,\r\n 01 Dec 1994 16:00:00 GMT\r\n\r\n", []string{"Date"}, true},
		{"not ended", "HTTP/1.1 200 OK\r\nExpires: a\r\n b\r\n", []string{"Expires"}, false},
		{"body looks like a fold", "HTTP/1.1 200 OK\r\nX: 1\r\n\r\n folded?\r\n", nil, true},
		{"a long name is not remembered", "HTTP/1.1 200 OK\r\n" + strings.Repeat("X", 40) + ": a\r\n b\r\n\r\n", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, step := range []int{len(tc.in), 1, 7} {
				var s headScan
				ended := false
				for i := 0; i < len(tc.in) && !ended; i += step {
					ended = s.feed([]byte(tc.in[i:min(i+step, len(tc.in))]))
				}
				if ended != tc.ended || fmt.Sprint(s.folded) != fmt.Sprint(tc.folded) {
					t.Errorf("in reads of %d: ended %v, folded %v; want %v, %v", step, ended, s.folded, tc.ended, tc.folded)
				}
			}
		})
	}
}
