package accesslog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

var at = time.Date(2026, 12, 5, 16, 14, 42, 123000000, time.UTC)

func entry(uri, ua string) *Entry {
	return &Entry{Time: at, Client: "127.0.0.1", Method: "GET", Host: "shop.cdn.example.test", URI: uri,
		Proto: "HTTP/1.1", Status: 200, Bytes: 1234, Duration: 1500 * time.Microsecond, Referer: "", UserAgent: ua,
		Fields: []Field{{"distribution", "shop"}, {"cache", "hit"}}}
}

func TestFormats(t *testing.T) {
	for _, tc := range []struct {
		name   string
		f      Format
		e      *Entry
		golden string
	}{
		{"combined plain", Combined, entry("/a?b=1", "curl/8.5"),
			`127.0.0.1 - - [05/Dec/2026:16:14:42 +0000] "GET /a?b=1 HTTP/1.1" 200 1234 "-" "curl/8.5"` + "\n"},
		{"combined quotes and control bytes", Combined, entry("/a\"b\\c\x01", "x\" \"y\nz\xff"),
			`127.0.0.1 - - [05/Dec/2026:16:14:42 +0000] "GET /a\x22b\x5Cc\x01 HTTP/1.1" 200 1234 "-" "x\x22 \x22y\x0Az\xFF"` + "\n"},
		{"combined empty client and referer", Combined, &Entry{Time: at, Method: "HEAD", URI: "/", Status: 304, Referer: "http://r/"},
			`- - - [05/Dec/2026:16:14:42 +0000] "HEAD /" 304 0 "http://r/" "-"` + "\n"},
		{"json plain", JSON, entry("/a?b=1", "curl/8.5"),
			`{"time":"2026-12-05T16:14:42.123Z","client":"127.0.0.1","method":"GET","host":"shop.cdn.example.test","uri":"/a?b=1","proto":"HTTP/1.1","status":200,"bytes":1234,"duration":0.0015,"referer":"","user_agent":"curl/8.5","distribution":"shop","cache":"hit"}` + "\n"},
		{"json quotes and control bytes", JSON, entry("/a\"b\\c\x01", "x\" \"y\nz\xff\x7f\té"),
			`{"time":"2026-12-05T16:14:42.123Z","client":"127.0.0.1","method":"GET","host":"shop.cdn.example.test","uri":"/a\"b\\c\u0001","proto":"HTTP/1.1","status":200,"bytes":1234,"duration":0.0015,"referer":"","user_agent":"x\" \"y\nz\ufffd\u007F\té","distribution":"shop","cache":"hit"}` + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := string(appendLine(nil, tc.f, tc.e))
			if got != tc.golden {
				t.Errorf("got\n%s\nwant\n%s", got, tc.golden)
			}
			if strings.Count(got, "\n") != 1 {
				t.Errorf("not one line: %q", got)
			}
			if tc.f == JSON {
				var m map[string]any
				if err := json.Unmarshal([]byte(got), &m); err != nil {
					t.Fatalf("not JSON: %v", err)
				}
				if m["uri"] != validRunes(tc.e.URI) {
					t.Errorf("uri decodes to %q, want %q", m["uri"], tc.e.URI)
				}
			}
		})
	}
}

func counters() (w, d prometheus.Counter) {
	return prometheus.NewCounter(prometheus.CounterOpts{Name: "w"}), prometheus.NewCounter(prometheus.CounterOpts{Name: "d"})
}

func open(t *testing.T, o Options) (*Log, string) {
	t.Helper()
	if o.Path == "" {
		o.Path = filepath.Join(t.TempDir(), "access.log")
	}
	if o.Buffer == 0 {
		o.Buffer = 64 << 10
	}
	if o.Flush == 0 {
		o.Flush = time.Hour // only Flush and full buffers write
	}
	if o.Sample == 0 {
		o.Sample = 1
	}
	l, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close(context.Background()) })
	return l, o.Path
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestBufferedUntilFlush(t *testing.T) {
	w, d := counters()
	l, p := open(t, Options{Format: Combined, Written: w, Dropped: d})
	for range 10 {
		l.Log(entry("/x", "ua"))
	}
	if got := read(t, p); got != "" {
		t.Fatalf("written before a flush: %q", got)
	}
	if err := l.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(read(t, p), "\n"); n != 10 {
		t.Fatalf("%d lines after flush, want 10", n)
	}
	if testutil.ToFloat64(w) != 10 || testutil.ToFloat64(d) != 0 {
		t.Fatalf("written %v dropped %v", testutil.ToFloat64(w), testutil.ToFloat64(d))
	}
}

func TestFullBufferIsWrittenWithoutFlush(t *testing.T) {
	w, _ := counters()
	line := appendLine(nil, Combined, entry("/x", "ua"))
	l, p := open(t, Options{Format: Combined, Buffer: 4 * len(line), Written: w})
	for range 5 { // the fifth does not fit: the first four go to the writer
		l.Log(entry("/x", "ua"))
	}
	waitFor(t, func() bool { return strings.Count(read(t, p), "\n") == 4 })
	l.Close(context.Background())
	if n := strings.Count(read(t, p), "\n"); n != 5 {
		t.Fatalf("%d lines after close, want 5", n)
	}
}

func TestFlushInterval(t *testing.T) {
	l, p := open(t, Options{Flush: 20 * time.Millisecond})
	l.Log(entry("/x", "ua"))
	waitFor(t, func() bool { return strings.Count(read(t, p), "\n") == 1 })
}

func TestLongLineAlone(t *testing.T) {
	l, p := open(t, Options{Format: Combined, Buffer: 64})
	l.Log(entry("/"+strings.Repeat("a", 200), "ua"))
	l.Flush(context.Background())
	if !strings.Contains(read(t, p), strings.Repeat("a", 200)) {
		t.Fatal("a line longer than the buffer was lost")
	}
}

func TestSampling(t *testing.T) {
	for _, tc := range []struct {
		sample float64
		want   int
	}{{1, 1000}, {0.5, 500}, {0.1, 100}, {0.013, 13}} {
		w, _ := counters()
		l, p := open(t, Options{Sample: tc.sample, Written: w, Buffer: 1 << 20})
		for range 1000 {
			l.Log(entry("/x", "ua"))
		}
		l.Close(context.Background())
		if n := strings.Count(read(t, p), "\n"); n != tc.want {
			t.Errorf("sample %v: %d lines of 1000, want %d", tc.sample, n, tc.want)
		}
	}
}

func TestNilLogIsOff(t *testing.T) {
	var l *Log
	l.Log(entry("/x", "ua"))
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// A writer stuck on a full pipe (a dead NFS mount, a stalled disk) costs
// lines, counted, never a request's time: Log returns at once.
func TestStalledDiskDropsInsteadOfBlocking(t *testing.T) {
	r, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w, d := counters()
	l := start(Options{Path: "pipe", Format: Combined, Buffer: 4 << 10, Flush: time.Hour, Sample: 1, Written: w, Dropped: d}, pw, pw)
	const n = 20_000 // ~2 MB of lines: far past the pipe's 64 KiB and the queue
	for range n {
		l.Log(entry("/x", "ua"))
	}
	dropped := testutil.ToFloat64(d)
	if dropped == 0 {
		t.Fatal("no line dropped although the writer is stuck")
	}
	// Unstick the writer: what was not dropped is written.
	go func() { var buf bytes.Buffer; buf.ReadFrom(r) }()
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(w) + dropped; got != n {
		t.Fatalf("written+dropped = %v, want %d", got, n)
	}
}

func TestReopenAfterRename(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "access.log")
	a, _ := open(t, Options{Path: p, Format: Combined})
	a.Log(entry("/before", "ua"))
	a.Flush(context.Background())
	// logrotate: rename, then have the daemon open the path again.
	if err := os.Rename(p, p+".1"); err != nil {
		t.Fatal(err)
	}
	a.Log(entry("/late", "ua")) // in a's buffer: belongs to the old file
	b, _ := open(t, Options{Path: p, Format: Combined})
	a.Close(context.Background())
	b.Log(entry("/after", "ua"))
	b.Close(context.Background())
	old, cur := read(t, p+".1"), read(t, p)
	if !strings.Contains(old, "/before") || !strings.Contains(old, "/late") || strings.Contains(old, "/after") {
		t.Errorf("rotated file: %q", old)
	}
	if cur == "" || !strings.Contains(cur, "/after") || strings.Contains(cur, "/before") {
		t.Errorf("reopened file: %q", cur)
	}
}

func TestOpenErrors(t *testing.T) {
	for _, o := range []Options{
		{Path: filepath.Join(t.TempDir(), "no", "such", "dir", "a.log"), Buffer: 1, Flush: 1, Sample: 1},
		{Path: "stderr", Buffer: 0, Flush: 1, Sample: 1},
		{Path: "stderr", Buffer: 1, Flush: 1, Sample: 0},
		{Path: "stderr", Buffer: 1, Flush: 1, Sample: 1.5},
	} {
		if l, err := Open(o); err == nil {
			l.Close(context.Background())
			t.Errorf("%+v: no error", o)
		}
	}
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	for i := 0; i < 1000; i++ {
		if ok() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("condition not met in 10 s")
}

// FuzzFormats: whatever a client puts in its request line and headers,
// a JSON line parses, and every line is exactly one line.
func FuzzFormats(f *testing.F) {
	for _, s := range []string{"/a", `/"quoted"`, "/\x00\x1f\x7f\xff", "\n\r\t", "é\xc3", `\"`, "\u2028"} {
		f.Add(s, s)
	}
	f.Fuzz(func(t *testing.T, uri, ua string) {
		e := entry(uri, ua)
		e.Referer = ua
		for _, fm := range []Format{JSON, Combined} {
			line := appendLine(nil, fm, e)
			if bytes.Count(line, []byte("\n")) != 1 || line[len(line)-1] != '\n' {
				t.Fatalf("format %d: not one line: %q", fm, line)
			}
			if fm == JSON {
				var m map[string]any
				if err := json.Unmarshal(line, &m); err != nil {
					t.Fatalf("not JSON: %v: %q", err, line)
				}
				if m["uri"] != validRunes(uri) {
					t.Fatalf("uri %q decodes to %q", uri, m["uri"])
				}
			} else if bytes.Count(line, []byte(`"`)) != 6 {
				t.Fatalf("combined line with a forged field: %q", line)
			}
		}
	})
}

// validRunes is s with each byte that is not UTF-8 replaced by U+FFFD,
// as encoding/json does.
func validRunes(s string) string {
	var b strings.Builder
	for _, r := range s {
		b.WriteRune(r)
	}
	return b.String()
}

// TestCurrent: a log is current while its path names its file, not once
// the file was renamed or removed.
func TestCurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.log")
	l, err := Open(Options{Path: path, Format: JSON, Buffer: 4096, Flush: time.Hour, Sample: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(context.Background())
	if !l.Current() {
		t.Fatal("a freshly opened log is not current")
	}
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if l.Current() {
		t.Error("current after its file was renamed")
	}
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if l.Current() {
		t.Error("current with another file at its path")
	}
}

// TestCloseTimeoutClosesFile: a Close that gives up waiting for the
// writer still has the file closed once the writer is done.
func TestCloseTimeoutClosesFile(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// The writer may exit before Close looks: try until Close times out.
	for range 100 {
		l, err := Open(Options{Path: filepath.Join(t.TempDir(), "a.log"), Format: JSON, Buffer: 4096, Flush: time.Hour, Sample: 1})
		if err != nil {
			t.Fatal(err)
		}
		if l.Close(ctx) == nil {
			continue
		}
		<-l.exited
		for range 1000 {
			if _, err := l.file.Write(nil); errors.Is(err, os.ErrClosed) {
				return
			}
			time.Sleep(time.Millisecond)
		}
		t.Fatal("the file stays open after a Close that timed out")
	}
	t.Fatal("Close never timed out against a cancelled context in 100 tries: nothing here shows the file closed after a timeout")
}
