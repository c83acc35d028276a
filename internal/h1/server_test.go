package h1

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// echo answers with what it saw, so a test can tell the fast path and the
// net/http fallback gave the handler the same request.
func echo(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var keys []string
	for k := range r.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s %s %s host=%s uri=%s close=%v body=%q\n", r.Method, r.URL.Path, r.URL.RawQuery, r.Host, r.RequestURI, r.Close, body)
	for _, k := range keys {
		fmt.Fprintf(&sb, "%s=%q\n", k, r.Header[k])
	}
	switch r.URL.Path {
	case "/big":
		// No Content-Length and more than the writer holds back: chunked.
		w.Write([]byte(sb.String()))
		w.Write([]byte(strings.Repeat("b", 3*pendingMax)))
		return
	case "/declared":
		w.Header().Set("Content-Length", "5")
		w.Write([]byte("hello"))
		return
	case "/short":
		w.Header().Set("Content-Length", "10")
		w.Write([]byte("hello"))
		return
	case "/304":
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("ETag", `"x"`)
		w.WriteHeader(http.StatusNotModified)
		return
	case "/split":
		w.Header().Set("X-Evil", "a\r\nSet-Cookie: owned=1")
	case "/flush":
		w.Write([]byte("part1"))
		w.(http.Flusher).Flush()
		w.Write([]byte("part2"))
		return
	case "/panic":
		panic("boom")
	case "/file":
		f, err := os.Open(r.URL.Query().Get("f"))
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		defer f.Close()
		st, _ := f.Stat()
		w.Header().Set("Content-Length", fmt.Sprint(st.Size()))
		io.Copy(w, f)
		return
	}
	w.Write([]byte(sb.String()))
}

func start(t *testing.T, h http.Handler) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Handler: h, ErrorLog: log.New(io.Discard, "", 0)}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; err != ErrServerClosed {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return s, ln.Addr().String()
}

// send dials addr and writes raw; the connection closes with the test.
func send(t *testing.T, addr, raw string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	return c
}

// exchange writes raw bytes and reads as many responses as asked for.
func exchange(t *testing.T, addr, raw string, n int, method string) ([]*http.Response, []string) {
	t.Helper()
	c := send(t, addr, raw)
	br := bufio.NewReader(c)
	var resps []*http.Response
	var bodies []string
	for range n {
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			t.Fatalf("reading response %d to %q: %v", len(resps)+1, raw, err)
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("reading body %d: %v", len(resps)+1, err)
		}
		resps = append(resps, resp)
		bodies = append(bodies, string(b))
	}
	return resps, bodies
}

func TestRequestsAsNetHTTPSeesThem(t *testing.T) {
	_, fast := start(t, http.HandlerFunc(echo))
	// net/http as the fallback runs it: closing after a request that came
	// with Transfer-Encoding (RFC 9112 §6.1).
	ref := &http.Server{Handler: CloseAfterTransferEncoding(http.HandlerFunc(echo))}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go ref.Serve(ln)
	defer ref.Close()
	cases := []struct{ name, raw string }{
		{"plain", "GET /a/b?x=1&y=2 HTTP/1.1\r\nHost: shop.test\r\nUser-Agent: t\r\nAccept: */*\r\n\r\n"},
		{"escaped path", "GET /a%20b/%2Fc?q=%41 HTTP/1.1\r\nHost: shop.test\r\n\r\n"},
		{"lower-case names, repeated header", "GET / HTTP/1.1\r\nhost: shop.test\r\nx-a: 1\r\nX-A: 2\r\ncache-control: max-age=0\r\n\r\n"},
		{"pragma no-cache", "GET / HTTP/1.1\r\nHost: h\r\nPragma: no-cache\r\n\r\n"},
		{"pragma with cache-control", "GET / HTTP/1.1\r\nHost: h\r\nPragma: no-cache\r\nCache-Control: max-age=5\r\n\r\n"},
		{"bare LF", "GET /lf HTTP/1.1\nHost: h\nX-Y:  spaced  \n\n"},
		{"HTTP/1.0", "GET /old HTTP/1.0\r\n\r\n"},
		{"HTTP/1.0 keep-alive", "GET /old HTTP/1.0\r\nConnection: keep-alive\r\nHost: h\r\n\r\n"},
		{"close", "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"},
		{"HEAD", "HEAD /x HTTP/1.1\r\nHost: h\r\n\r\n"},
		{"content-length 0", "DELETE /x HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"},
		{"POST body (handed off)", "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"},
		{"chunked body (handed off)", "PUT /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"},
		{"absolute form (handed off)", "GET http://other.test/abs HTTP/1.1\r\nHost: h\r\n\r\n"},
		{"missing host (handed off)", "GET / HTTP/1.1\r\nAccept: x\r\n\r\n"},
		{"two hosts (handed off)", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"},
		{"bad host (handed off)", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n"},
		{"space before colon (handed off)", "GET / HTTP/1.1\r\nHost : h\r\n\r\n"},
		{"control character (handed off)", "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x01b\r\n\r\n"},
		{"HTTP/2.0 line (handed off)", "GET / HTTP/2.0\r\nHost: h\r\n\r\n"},
		{"garbage (handed off)", "hello there\r\n\r\n"},
		{"huge header (handed off)", "GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + strings.Repeat("v", 6000) + "\r\n\r\n"},
		{"expect (handed off)", "POST /e HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\nok"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			method := strings.SplitN(tc.raw, " ", 2)[0]
			want, wantBody := exchange(t, ln.Addr().String(), tc.raw, 1, method)
			got, gotBody := exchange(t, fast, tc.raw, 1, method)
			if got[0].StatusCode != want[0].StatusCode || gotBody[0] != wantBody[0] {
				t.Fatalf("fast path: %d %q\nnet/http: %d %q", got[0].StatusCode, gotBody[0], want[0].StatusCode, wantBody[0])
			}
			if got[0].ContentLength != want[0].ContentLength || got[0].Close != want[0].Close || got[0].Proto != want[0].Proto {
				t.Fatalf("framing: fast length %d close %v %s, net/http length %d close %v %s",
					got[0].ContentLength, got[0].Close, got[0].Proto, want[0].ContentLength, want[0].Close, want[0].Proto)
			}
			for _, k := range []string{"Content-Type", "Connection", "Transfer-Encoding"} {
				if got[0].Header.Get(k) != want[0].Header.Get(k) {
					t.Errorf("%s: fast %q, net/http %q", k, got[0].Header.Get(k), want[0].Header.Get(k))
				}
			}
		})
	}
}

// TestSmugglingShapes: a header block that frames its body two ways, or
// folds a line, is refused with 400 and the connection closed, so no
// bytes after it are read as a request (RFC 9112 §6.1, §5.2, §11.2); a
// chunked request handed to net/http (here with a header block too large
// for the fast path) closes the connection after its answer.
func TestSmugglingShapes(t *testing.T) {
	_, addr := start(t, http.HandlerFunc(echo))
	hidden := "GET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n"
	cases := []struct{ name, raw string }{
		{"CL.TE", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
		{"TE.CL", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n"},
		{"CL 0 and TE", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
		{"folded TE", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n"},
		{"folded header", "GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n\t2\r\n\r\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := send(t, addr, tc.raw+hidden)
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			if resp.StatusCode != 400 || !resp.Close {
				t.Fatalf("status %d, close %v; want 400 and the connection closed", resp.StatusCode, resp.Close)
			}
			if rest, _ := io.ReadAll(br); len(rest) > 0 {
				t.Fatalf("more answered after the refusal: %q", rest)
			}
		})
	}
	t.Run("chunked through net/http", func(t *testing.T) {
		big := "X-Big: " + strings.Repeat("v", 6000) + "\r\n"
		c := send(t, addr, "PUT /p HTTP/1.1\r\nHost: h\r\n"+big+"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"+hidden)
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != 200 || !resp.Close {
			t.Fatalf("status %d, close %v; want 200 and the connection closed", resp.StatusCode, resp.Close)
		}
		if rest, _ := io.ReadAll(br); len(rest) > 0 {
			t.Fatalf("a request after the chunked one was answered: %q", rest)
		}
	})
}

func TestFramingAndKeepAlive(t *testing.T) {
	_, addr := start(t, http.HandlerFunc(echo))
	// Pipelined: four requests in one write, four answers in order, on one
	// connection, across the fast path's framings.
	raw := "GET /declared HTTP/1.1\r\nHost: h\r\n\r\n" +
		"GET /big HTTP/1.1\r\nHost: h\r\n\r\n" +
		"HEAD /big HTTP/1.1\r\nHost: h\r\n\r\n" +
		"GET /flush HTTP/1.1\r\nHost: h\r\n\r\n" +
		"GET /304 HTTP/1.1\r\nHost: h\r\n\r\n" +
		"GET /last HTTP/1.1\r\nHost: h\r\n\r\n"
	c := send(t, addr, raw)
	br := bufio.NewReader(c)
	check := func(method string, status int, te []string, length int64, body func(string) bool) {
		t.Helper()
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != status || fmt.Sprint(resp.TransferEncoding) != fmt.Sprint(te) || resp.ContentLength != length || !body(string(b)) {
			t.Fatalf("%s: status %d te %v length %d body %.60q", method, resp.StatusCode, resp.TransferEncoding, resp.ContentLength, b)
		}
		if resp.Header.Get("Date") == "" {
			t.Errorf("no Date header")
		}
	}
	check("GET", 200, nil, 5, func(s string) bool { return s == "hello" })
	check("GET", 200, []string{"chunked"}, -1, func(s string) bool { return strings.HasSuffix(s, strings.Repeat("b", 3*pendingMax)) })
	check("HEAD", 200, nil, -1, func(s string) bool { return s == "" })
	check("GET", 200, []string{"chunked"}, -1, func(s string) bool { return s == "part1part2" })
	check("GET", 304, nil, 0, func(s string) bool { return s == "" })
	check("GET", 200, nil, int64(len("GET /last  host=h uri=/last close=false body=\"\"\n")), func(s string) bool { return strings.HasPrefix(s, "GET /last") })
}

func TestShortBodyClosesConnection(t *testing.T) {
	_, addr := start(t, http.HandlerFunc(echo))
	c := send(t, addr, "GET /short HTTP/1.1\r\nHost: h\r\n\r\nGET /short HTTP/1.1\r\nHost: h\r\n\r\n")
	// The handler declared 10 bytes and wrote 5: the connection must end
	// rather than let the next reply be read as the missing body.
	all, _ := io.ReadAll(c)
	if n := strings.Count(string(all), "HTTP/1.1 200"); n != 1 {
		t.Fatalf("%d responses on a connection that should have closed after one:\n%s", n, all)
	}
}

func TestHeaderValueCannotSplitResponse(t *testing.T) {
	_, addr := start(t, http.HandlerFunc(echo))
	resps, _ := exchange(t, addr, "GET /split HTTP/1.1\r\nHost: h\r\n\r\n", 1, "GET")
	if resps[0].Header.Get("Set-Cookie") != "" || !strings.Contains(resps[0].Header.Get("X-Evil"), "Set-Cookie") {
		t.Fatalf("header split: %v", resps[0].Header)
	}
}

func TestPanicClosesOnlyThatConnection(t *testing.T) {
	_, addr := start(t, http.HandlerFunc(echo))
	c := send(t, addr, "GET /panic HTTP/1.1\r\nHost: h\r\n\r\n")
	if b, _ := io.ReadAll(c); len(b) != 0 {
		t.Fatalf("a panicking handler's connection got %q", b)
	}
	if _, bodies := exchange(t, addr, "GET /after HTTP/1.1\r\nHost: h\r\n\r\n", 1, "GET"); !strings.HasPrefix(bodies[0], "GET /after") {
		t.Fatalf("server did not survive: %q", bodies[0])
	}
}

func TestFileGoesOutWhole(t *testing.T) {
	_, addr := start(t, http.HandlerFunc(echo))
	f := filepath.Join(t.TempDir(), "obj")
	data := strings.Repeat("0123456789abcdef", 64<<10)
	if err := os.WriteFile(f, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr + "/file?f=" + f)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if string(b) != data || resp.ContentLength != int64(len(data)) {
		t.Fatalf("got %d bytes (length %d), want %d", len(b), resp.ContentLength, len(data))
	}
}

func TestClientsAgree(t *testing.T) {
	_, addr := start(t, http.HandlerFunc(echo))
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 50 {
				path := fmt.Sprintf("/c%d/%d", i, j)
				req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
				if j%5 == 0 {
					req, _ = http.NewRequest("POST", "http://"+addr+path, strings.NewReader("body"))
				}
				resp, err := client.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if !strings.Contains(string(b), path) {
					t.Errorf("%s: got %q", path, b)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestShutdownWaitsForActiveAndClosesIdle(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{})
	s, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(started)
			<-release
		}
		w.Write([]byte("done"))
	}))
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	got := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + addr + "/slow")
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- string(b)
	}()
	<-started
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a request in flight", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	if b := <-got; b != "done" {
		t.Fatalf("request in flight got %q", b)
	}
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
	idle.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := idle.Read(make([]byte, 1)); err == nil {
		t.Fatal("idle connection still open after Shutdown")
	}
}

func TestContextCancelledWhenClientLeaves(t *testing.T) {
	cancelled := make(chan error, 1)
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			cancelled <- r.Context().Err()
		case <-time.After(10 * time.Second):
			cancelled <- nil
		}
	}))
	c := send(t, addr, "GET /wait HTTP/1.1\r\nHost: h\r\n\r\n")
	time.Sleep(50 * time.Millisecond) // let the handler start waiting
	c.Close()
	if err := <-cancelled; err != context.Canceled {
		t.Fatalf("the handler's context ended with %v, want context.Canceled", err)
	}
}

func TestWatchingKeepsPipelinedRequest(t *testing.T) {
	// A handler that asks for Done makes the connection watch the socket;
	// a pipelined request arriving meanwhile must still be answered, whole.
	var seen sync.Map
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		done := r.Context().Done()
		if r.URL.Path == "/first" {
			time.Sleep(100 * time.Millisecond) // the second request arrives now
		}
		select {
		case <-done:
			t.Errorf("%s: context cancelled while the client waits", r.URL.Path)
		default:
		}
		seen.Store(r.URL.Path, true)
		w.Write([]byte(r.URL.Path))
	}))
	c := send(t, addr, "GET /first HTTP/1.1\r\nHost: h\r\n\r\n")
	time.Sleep(30 * time.Millisecond)
	io.WriteString(c, "GET /second HTTP/1.1\r\nHost: h\r\n\r\n")
	br := bufio.NewReader(c)
	for _, want := range []string{"/first", "/second"} {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		if string(b) != want {
			t.Fatalf("got %q, want %q", b, want)
		}
	}
}

func TestIncompleteHeaderGetsHeaderTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Handler: http.HandlerFunc(echo), ReadHeaderTimeout: 200 * time.Millisecond, IdleTimeout: time.Hour, ErrorLog: log.New(io.Discard, "", 0)}
	go s.Serve(ln)
	defer s.Close()
	// A header block that never ends (slowloris): the server must give up
	// after the header timeout, not the hour-long idle one. The client's
	// own deadline is far above the former.
	c := send(t, ln.Addr().String(), "GET / HTTP/1.1\r\nHost: h\r\n")
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, err = c.Read(make([]byte, 1))
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("server still waiting for the rest of the header after 20 s")
	}
	if err == nil {
		t.Fatal("server answered an incomplete request")
	}
}
