package edge

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/role"
)

// rawOrigin is a loopback origin that answers each request with the
// bytes respond returns for its request line (nothing: it closes the
// connection without an answer), one request per connection, so that
// framing the Go server would never write can be tested.
type rawOrigin struct {
	url  string
	mu   sync.Mutex
	seen []string
}

func newRawOrigin(t *testing.T, respond func(requestLine string) string) *rawOrigin {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &rawOrigin{url: "http://" + ln.Addr().String()}
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
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				tp := textproto.NewReader(bufio.NewReader(c))
				line, err := tp.ReadLine()
				if err != nil {
					return
				}
				if _, err := tp.ReadMIMEHeader(); err != nil {
					return
				}
				o.mu.Lock()
				o.seen = append(o.seen, line)
				o.mu.Unlock()
				if r := respond(line); r != "" {
					io.WriteString(c, r)
				}
			}()
		}
	}()
	return o
}

func (o *rawOrigin) count() int { o.mu.Lock(); defer o.mu.Unlock(); return len(o.seen) }

// 1xx interim responses reach the client before the final response and
// are never stored; the final response is.
func TestInterimResponsesPassThrough(t *testing.T) {
	o := newRawOrigin(t, func(string) string {
		return "HTTP/1.1 102 Processing\r\n\r\n" +
			"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n" +
			"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"
	})
	h := newHarness(t, nil, site(1, simple(o.url)))
	type interim struct {
		code int
		link string
	}
	get := func() ([]interim, *http.Response, string) {
		var got []interim
		trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			got = append(got, interim{code, h.Get("Link")})
			return nil
		}}
		req, _ := http.NewRequest("GET", h.base+"/page", nil)
		req.Host = "shop.cdn.test"
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
		resp, err := h.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return got, resp, string(b)
	}
	got, resp, body := get()
	if len(got) != 2 || got[0].code != 102 || got[1].code != 103 || got[1].link != "</s.css>; rel=preload" {
		t.Fatalf("interim responses %+v", got)
	}
	if resp.StatusCode != 200 || body != "hello" || resp.Header.Get("Link") != "" || !strings.Contains(resp.Header.Get("Cache-Status"), "stored") {
		t.Fatalf("final %d %q %v", resp.StatusCode, body, resp.Header)
	}
	got, resp, body = get()
	if len(got) != 0 || resp.StatusCode != 200 || body != "hello" || !strings.Contains(resp.Header.Get("Cache-Status"), "hit") {
		t.Fatalf("second: interim %+v, %d %q %q", got, resp.StatusCode, body, resp.Header.Get("Cache-Status"))
	}
	if o.count() != 1 {
		t.Fatalf("origin asked %d times", o.count())
	}
}

// A response the origin frames with Transfer-Encoding is relayed (and
// stored when it may be); codings other than chunked get 502, as nginx
// and Go's client refuse them, and so does a chunked body cut short.
func TestOriginTransferEncoding(t *testing.T) {
	const ok = "HTTP/1.1 200 OK\r\nConnection: close\r\n"
	for _, tc := range []struct {
		name, resp string
		status     int
		body       string
		stored     bool
	}{
		{"chunked", ok + "Cache-Control: max-age=60\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", 200, "hello world", true},
		{"chunked in capitals", ok + "Cache-Control: max-age=60\r\nTransfer-Encoding: CHUNKED\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 200, "hello", true},
		{"extensions and trailers", ok + "Cache-Control: max-age=60\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n5;x=1\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\n", 200, "hello", true},
		{"chunked wins over content-length", ok + "Cache-Control: max-age=60\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 200, "hello", true},
		{"not stored, streamed", ok + "Cache-Control: no-store\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 200, "hello", false},
		{"gzip coding", ok + "Transfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 502, "", false},
		{"chunked twice", ok + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 502, "", false},
		{"cut short", ok + "Cache-Control: max-age=60\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", 502, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := newRawOrigin(t, func(string) string { return tc.resp })
			h := newHarness(t, nil, site(1, simple(o.url)))
			r := h.get("/te")
			if r.status != tc.status || tc.status == 200 && r.body != tc.body {
				t.Fatalf("%d %q (%s), want %d %q", r.status, r.body, r.cs(), tc.status, tc.body)
			}
			if r.header.Get("Transfer-Encoding") != "" || r.header.Get("Trailer") != "" {
				t.Fatalf("hop-by-hop fields relayed: %v", r.header)
			}
			if got := strings.Contains(r.cs(), "stored"); got != tc.stored {
				t.Fatalf("stored %v, want %v (%s)", got, tc.stored, r.cs())
			}
		})
	}
}

// A body that breaks off after the edge sent the status must reach the
// client broken, not as a complete shorter response.
func TestTruncatedRelayIsNotComplete(t *testing.T) {
	o := newRawOrigin(t, func(string) string {
		return "HTTP/1.1 200 OK\r\nCache-Control: no-store\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
	})
	h := newHarness(t, nil, site(1, simple(o.url)))
	req, _ := http.NewRequest("GET", h.base+"/cut", nil)
	req.Host = "shop.cdn.test"
	resp, err := h.c.Do(req)
	if err != nil {
		return // cut before the status line went out: not complete either
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil {
		t.Fatalf("a cut-short body read as complete: %d %q", resp.StatusCode, b)
	}
}

// A request body whose chunked framing is broken is the client's error:
// 400, and the origin never gets a complete request.
func TestBrokenChunkedRequestBody(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	var errs []error
	o := newOrigin(t, &clock{}, func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		mu.Lock()
		bodies, errs = append(bodies, string(b)), append(errs, err)
		mu.Unlock()
		io.WriteString(w, "got "+string(b))
	})
	h := newHarness(t, nil, site(1, simple(o.URL)))
	send := func(raw string) string {
		t.Helper()
		c, err := net.Dial("tcp", strings.TrimPrefix(h.base, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, raw)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		return resp.Status + " " + string(b)
	}
	head := "POST /form HTTP/1.1\r\nHost: shop.cdn.test\r\nTransfer-Encoding: chunked\r\n\r\n"
	if got := send(head + "5\r\nhello\r\n0\r\n\r\n"); !strings.HasPrefix(got, "200 OK got hello") {
		t.Fatalf("valid chunked body: %q", got)
	}
	for _, broken := range []string{
		"5\r\nhelloXX\r\n0\r\n\r\n", // chunk longer than its size
		"zz\r\nhello\r\n0\r\n\r\n",  // size not hex
	} {
		if got := send(head + broken); !strings.HasPrefix(got, "400 ") {
			t.Errorf("%q: %q", broken, got)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for i := 1; i < len(errs); i++ {
		if errs[i] == nil {
			t.Errorf("the origin got a complete request from a broken body: %q", bodies[i])
		}
	}
}

// An extension method a behavior allows is forwarded like any unsafe
// method and drops the stored copy of its URI; one it does not allow is
// 405.
func TestExtensionMethod(t *testing.T) {
	o := newOrigin(t, &clock{}, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		io.WriteString(w, r.Method)
	})
	h := newHarness(t, nil, site(1, simple(o.URL, func(s *config.Spec) {
		s.Behaviors[0].Methods = []string{"GET", "HEAD", "M-SEARCH"}
	})))
	expect(t, h.get("/dev"), 200, "GET", "stored")
	expect(t, h.get("/dev"), 200, "GET", "hit")
	expect(t, h.do("M-SEARCH", "shop.cdn.test", "/dev"), 200, "M-SEARCH", "fwd=method")
	if m := o.last().Method; m != "M-SEARCH" {
		t.Fatalf("origin got %s", m)
	}
	expect(t, h.get("/dev"), 200, "GET", "fwd=uri-miss") // invalidated
	r := h.do("NOTIFY", "shop.cdn.test", "/dev")
	if r.status != 405 || !strings.Contains(r.header.Get("Allow"), "M-SEARCH") {
		t.Fatalf("NOTIFY: %d Allow %q", r.status, r.header.Get("Allow"))
	}
}

// When the origin cannot be reached or closes the connection, a stale
// copy answers within the stale-if-error grace (the behavior's
// ttl.staleIfError, or the origin's stale-if-error), unless the origin
// said it must not be served stale.
func TestStaleWhenOriginFails(t *testing.T) {
	for _, tc := range []struct {
		cc    string
		stale bool
	}{
		{"max-age=1", true},
		{"max-age=1, must-revalidate", false},
		{"max-age=1, proxy-revalidate", false},
		{"max-age=1, s-maxage=1", false},
		{"max-age=1, no-cache", false},
	} {
		for _, failure := range []string{"closes", "refuses"} {
			t.Run(tc.cc+"/"+failure, func(t *testing.T) {
				clk := &clock{}
				var mu sync.Mutex
				up := true
				o := newRawOrigin(t, func(string) string {
					mu.Lock()
					defer mu.Unlock()
					if !up {
						return "" // accepted, then closed without an answer
					}
					return "HTTP/1.1 200 OK\r\nDate: " + clk.date() + "\r\nCache-Control: " + tc.cc +
						"\r\nContent-Length: 3\r\nConnection: close\r\n\r\nold"
				})
				url := o.url
				if failure == "refuses" {
					// A port nothing listens on: connection refused.
					ln, _ := net.Listen("tcp", "127.0.0.1:0")
					dead := "http://" + ln.Addr().String()
					ln.Close()
					url = dead
				}
				d := simple(o.url, func(s *config.Spec) {
					s.Behaviors[0].TTL.StaleIfError = dptr(time.Hour)
				})
				h := newHarness(t, clk, site(1, d))
				expect(t, h.get("/s"), 200, "old", "stored")
				clk.advance(time.Minute)
				mu.Lock()
				up = false
				mu.Unlock()
				if url != o.url {
					if err := role.Apply(context.Background(), h.e, site(2, simple(url, func(s *config.Spec) {
						s.Behaviors[0].TTL.StaleIfError = dptr(time.Hour)
						s.OriginGroups = nil
					}))); err != nil {
						t.Fatal(err)
					}
				}
				r := h.get("/s")
				if tc.stale {
					expect(t, r, 200, "old", "stale-if-error")
				} else if r.status < 500 {
					t.Fatalf("served %d %q (%s) although %q forbids stale", r.status, r.body, r.cs(), tc.cc)
				}
			})
		}
	}
}

// Equivalent selecting headers share one variant.
func TestVaryNormalised(t *testing.T) {
	o := newOrigin(t, &clock{}, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		w.Header().Set("Vary", "Accept-Language, Accept")
		io.WriteString(w, "lang "+r.Header.Get("Accept-Language"))
	})
	h := newHarness(t, nil, site(1, simple(o.URL, func(s *config.Spec) {
		s.Behaviors[0].Forward.Headers = []string{"*"}
	})))
	expect(t, h.get("/v", "Accept-Language", "en-US, fr;q=0.5", "Accept", "text/html,  */*"), 200, "lang", "stored")
	expect(t, h.get("/v", "Accept-Language", "FR; q=0.50 ,en-us", "Accept", " text/html , */*"), 200, "lang", "hit")
	expect(t, h.get("/v", "Accept-Language", "fr, en-US;q=0.5", "Accept", "text/html, */*"), 200, "lang", "vary-miss")
	if o.count() != 2 {
		t.Fatalf("origin asked %d times, want 2", o.count())
	}
}

// Interim responses pass through a non-caching behavior too, and never
// reach an HTTP/1.0 client (RFC 9110 §15.2).
func TestInterimResponsesBypassAndHTTP10(t *testing.T) {
	o := newRawOrigin(t, func(string) string {
		return "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n" +
			"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"
	})
	no := false
	h := newHarness(t, nil, site(1, simple(o.url, func(s *config.Spec) { s.Behaviors[0].Cache = &no })))
	raw := func(req string) string {
		t.Helper()
		c, err := net.Dial("tcp", strings.TrimPrefix(h.base, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, req)
		b, _ := io.ReadAll(c)
		return string(b)
	}
	got := raw("GET /b HTTP/1.1\r\nHost: shop.cdn.test\r\nConnection: close\r\n\r\n")
	if !strings.HasPrefix(got, "HTTP/1.1 103 Early Hints\r\n") || !strings.Contains(got, "Link: </s.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\n") || !strings.HasSuffix(got, "hello") {
		t.Fatalf("HTTP/1.1 client got %q", got)
	}
	got = raw("GET /b HTTP/1.0\r\nHost: shop.cdn.test\r\n\r\n")
	if !strings.HasPrefix(got, "HTTP/1.0 200 OK\r\n") && !strings.HasPrefix(got, "HTTP/1.1 200 OK\r\n") || strings.Contains(got, "103") {
		t.Fatalf("HTTP/1.0 client got %q", got)
	}
}
