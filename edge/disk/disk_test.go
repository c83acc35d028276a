package disk

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// openIndexed opens a store and waits for its start-up scan, so that no
// scan races the test's own writes to the directory.
func openIndexed(t *testing.T, dir string, size int64) *Store {
	t.Helper()
	s, err := Open(dir, size, nil)
	if err != nil {
		t.Fatal(err)
	}
	<-s.Indexed()
	return s
}

func put(t *testing.T, s *Store, key, meta, body string) {
	t.Helper()
	w, err := s.Create(key, []byte(meta), time.Time{}, int64(len(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := io.WriteString(w, body); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Commit(); err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, s *Store, key string) (meta, body string, err error) {
	t.Helper()
	o, err := s.Lookup(key)
	if err != nil {
		return "", "", err
	}
	f, err := s.OpenBody(o, 0)
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, o.BodyLen))
	return string(o.Meta), string(b), err
}

func TestRoundTripAndReopen(t *testing.T) {
	dir := t.TempDir()
	s := openIndexed(t, dir, 1<<20)
	put(t, s, "k1", `{"a":1}`, "hello")
	put(t, s, "k2", "", strings.Repeat("x", 10000))
	put(t, s, "k1", `{"a":2}`, "hello again") // replaces
	// A crash mid-write leaves a temporary file; reopening drops it.
	w, err := s.Create("k3", nil, time.Time{}, -1)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "half")
	w.f.Close() // no Commit, as after kill -9

	s2 := openIndexed(t, dir, 1<<20)
	for _, tc := range []struct{ key, meta, body string }{
		{"k1", `{"a":2}`, "hello again"},
		{"k2", "", strings.Repeat("x", 10000)},
	} {
		m, b, err := get(t, s2, tc.key)
		if err != nil || m != tc.meta || b != tc.body {
			t.Errorf("%s: meta %q body %d bytes err %v", tc.key, m, len(b), err)
		}
	}
	if _, _, err := get(t, s2, "k3"); !errors.Is(err, ErrNotFound) {
		t.Errorf("half-written k3: %v, want ErrNotFound", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(ents) != 0 {
		t.Errorf("tmp holds %d files after reopen", len(ents))
	}
	if st := s2.Stats(); st.Entries != 2 {
		t.Errorf("entries %d, want 2", st.Entries)
	}
}

func TestCorruptionDropped(t *testing.T) {
	for _, tc := range []struct {
		name string
		hurt func(t *testing.T, p string)
	}{
		{"flipped body byte", func(t *testing.T, p string) {
			b, _ := os.ReadFile(p)
			b[len(b)-3] ^= 0xff
			os.WriteFile(p, b, 0o644)
		}},
		{"truncated", func(t *testing.T, p string) { os.Truncate(p, 60) }},
		{"flipped header byte", func(t *testing.T, p string) {
			b, _ := os.ReadFile(p)
			b[headerSize+1] ^= 0xff
			os.WriteFile(p, b, 0o644)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openIndexed(t, dir, 1<<20)
			put(t, s, "key", "meta", "the body of the object")
			var p string
			filepath.WalkDir(dir, func(q string, de os.DirEntry, _ error) error {
				if !de.IsDir() {
					p = q
				}
				return nil
			})
			tc.hurt(t, p)
			s2 := openIndexed(t, dir, 1<<20)
			if _, _, err := get(t, s2, "key"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("damaged object: %v, want ErrNotFound", err)
			}
			if _, err := os.Stat(p); !os.IsNotExist(err) {
				t.Errorf("damaged file still there: %v", err)
			}
			if s2.Stats().Corrupt != 1 {
				t.Errorf("corrupt = %d, want 1", s2.Stats().Corrupt)
			}
		})
	}
}

// TestLookupWhileIndexing: a restarted store serves at once, before its
// scan has indexed anything, and a delete meanwhile is not undone by it.
func TestLookupWhileIndexing(t *testing.T) {
	dir := t.TempDir()
	s := openIndexed(t, dir, 1<<20)
	put(t, s, "a", "ma", "body a")
	put(t, s, "b", "mb", "body b")

	hold := make(chan struct{})
	s2, err := open(dir, 1<<20, nil, hold)
	if err != nil {
		t.Fatal(err)
	}
	if m, b, err := get(t, s2, "a"); err != nil || m != "ma" || b != "body a" {
		t.Fatalf("a before the scan: %q %q %v", m, b, err)
	}
	s2.Delete("b")
	close(hold)
	<-s2.Indexed()
	if _, _, err := get(t, s2, "b"); !errors.Is(err, ErrNotFound) {
		t.Errorf("b deleted during the scan came back: %v", err)
	}
	if st := s2.Stats(); st.Entries != 1 || st.Bytes != blocks(headerSize+1+2+6) {
		t.Errorf("stats after the scan: %+v", st)
	}
}

func TestEvictionBySize(t *testing.T) {
	s := openIndexed(t, t.TempDir(), 5*block)
	body := strings.Repeat("b", block) // 2 blocks with its header
	put(t, s, "a", "", body)
	put(t, s, "b", "", body)
	get(t, s, "a") // a is now more recent than b
	put(t, s, "c", "", body)
	if _, _, err := get(t, s, "b"); !errors.Is(err, ErrNotFound) {
		t.Errorf("b (least recently used) kept: %v", err)
	}
	for _, k := range []string{"a", "c"} {
		if _, _, err := get(t, s, k); err != nil {
			t.Errorf("%s: %v", k, err)
		}
	}
	if st := s.Stats(); st.Bytes > st.Capacity || st.Evictions != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestEvictionByCount(t *testing.T) {
	s := openIndexed(t, t.TempDir(), 1<<20)
	s.maxItems = 2
	for _, k := range []string{"a", "b", "c"} {
		put(t, s, k, "", "x")
	}
	if _, _, err := get(t, s, "a"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a kept beyond the count limit: %v", err)
	}
	if st := s.Stats(); st.Entries != 2 {
		t.Errorf("%d entries, want 2", st.Entries)
	}
}

func TestReadWhileGrowing(t *testing.T) {
	s := openIndexed(t, t.TempDir(), 1<<20)
	w, _ := s.Create("k", nil, time.Time{}, -1)
	defer w.Close()
	io.WriteString(w, "first ")
	p := make([]byte, 6)
	if n, _ := w.ReadAt(p, 0); string(p[:n]) != "first " {
		t.Fatalf("read %q", p[:n])
	}
	if _, err := s.Lookup("k"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("visible before commit: %v", err)
	}
	io.WriteString(w, "second")
	w.Commit()
	if _, b, _ := get(t, s, "k"); b != "first second" {
		t.Fatalf("body %q", b)
	}
}

func TestUnwritableDegrades(t *testing.T) {
	dir := t.TempDir()
	s := openIndexed(t, dir, 1<<20)
	os.RemoveAll(filepath.Join(dir, "tmp")) // every Create now fails
	if _, err := s.Create("k", nil, time.Time{}, 1); err == nil {
		t.Fatal("Create succeeded without its directory")
	}
	if s.Writable() || s.Stats().Degraded == "" || s.Stats().WriteErrors != 1 {
		t.Fatalf("not degraded: %+v", s.Stats())
	}
	if _, err := s.Create("k", nil, time.Time{}, 1); err == nil || s.Stats().Dropped != 1 {
		t.Fatalf("degraded tier took a write: %v %+v", err, s.Stats())
	}
}

func FuzzReadHeader(f *testing.F) {
	f.Add(encodeHeader("key", []byte(`{"status":200}`), 0, 0, 0))
	whole := append(encodeHeader("k", []byte("m"), 4, 99, 0), "body"...)
	f.Add(whole)
	f.Add(whole[:len(whole)-1])
	f.Add([]byte(magic))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := ReadHeader(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, io.EOF) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if h.BodyOff+h.BodyLen != int64(len(data)) {
			t.Fatalf("accepted a header whose lengths do not add up: %+v of %d bytes", h, len(data))
		}
		if got := encodeHeader(h.Key, h.Meta, h.BodyLen, h.Expires, h.BodyCRC); !bytes.Equal(got, data[:h.BodyOff]) {
			t.Fatalf("accepted header does not re-encode to itself")
		}
		Verify(bytes.NewReader(data), h) // must not panic
	})
}

// TestCloseStopsScan: Close ends a scan that has not finished (here held
// before it starts) and returns once its goroutine is done; what was
// opened before stays readable.
func TestCloseStopsScan(t *testing.T) {
	dir := t.TempDir()
	s := openIndexed(t, dir, 1<<20)
	put(t, s, "a", "ma", "body a")
	s.Close()

	hold := make(chan struct{})
	s2, err := open(dir, 1<<20, nil, hold)
	if err != nil {
		t.Fatal(err)
	}
	o, err := s2.Lookup("a")
	if err != nil {
		t.Fatal(err)
	}
	f, err := s2.OpenBody(o, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s2.Close() // hold is never closed: only Close ends the scan
	select {
	case <-s2.Indexed():
	default:
		t.Fatal("Close returned with the scan still running")
	}
	if b, err := io.ReadAll(f); err != nil || string(b) != "body a" {
		t.Errorf("body opened before Close: %q %v", b, err)
	}
}

// TestCopyBody: an object whose metadata changed gets its body copied
// from the old file with the old checksum, which a fresh store checks on
// the first lookup; a source shorter than announced fails the write.
func TestCopyBody(t *testing.T) {
	dir := t.TempDir()
	s := openIndexed(t, dir, 1<<20)
	body := strings.Repeat("0123456789", 3000)
	put(t, s, "k", "old meta", body)
	for _, tc := range []struct {
		name string
		n    int64
		ok   bool
	}{
		{"whole body", int64(len(body)), true},
		{"source too short", int64(len(body)) + 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := s.Lookup("k")
			if err != nil {
				t.Fatal(err)
			}
			src, err := s.OpenBody(o, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			w, err := s.Create("k", []byte("new meta"), time.Time{}, tc.n)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			err = w.CopyBody(src, tc.n, o.BodyCRC)
			if (err == nil) != tc.ok {
				t.Fatalf("CopyBody: %v, want ok %v", err, tc.ok)
			}
			if err != nil {
				if d := s.Degraded(); d != "" {
					t.Errorf("a short source degraded the store: %s", d)
				}
				return
			}
			if _, err := w.Commit(); err != nil {
				t.Fatal(err)
			}
		})
	}
	s.Close()
	// A new store checks the body against the checksum on first lookup.
	s2 := openIndexed(t, dir, 1<<20)
	defer s2.Close()
	if m, b, err := get(t, s2, "k"); err != nil || m != "new meta" || b != body {
		t.Fatalf("after a restart: %q, %d bytes, %v", m, len(b), err)
	}
}
