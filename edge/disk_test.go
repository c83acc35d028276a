package edge

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/edge/disk"
	"github.com/intercloud/intercloud/role"
	"github.com/intercloud/intercloud/status"
	"github.com/intercloud/intercloud/test/testenv"
)

// payload is a body of n bytes that differs at every offset and between
// seeds, so that a misplaced or stale byte shows.
func payload(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7+i>>8) ^ seed
	}
	return b
}

// objects answers GET /<name> with the bodies of objs, cacheable for an
// hour, with an ETag, honouring Range (http.ServeContent).
func objects(objs map[string][]byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b, ok := objs[strings.TrimPrefix(r.URL.Path, "/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "max-age=3600")
		w.Header().Set("ETag", fmt.Sprintf(`"%d-%x"`, len(b), b[:min(len(b), 8)]))
		w.Header().Set("Content-Type", "application/octet-stream")
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
	}
}

// diskSnap is site() with a small memory tier (objects up to 1 MiB) and a
// disk tier in dir.
func diskSnap(url, dir string, diskSize int64) *config.Snapshot {
	snap := site(1, simple(url))
	snap.Site.Nodes[0].Cache = config.Cache{Memory: 8 << 20, MaxObject: 1 << 20, Slice: 256 << 10,
		Disk: &config.DiskCache{Path: dir, Size: config.Size(diskSize)}}
	return snap
}

// eventually polls cond for up to ten seconds: for work the edge does in
// the background, such as writing behind to disk.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 1000 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// sameBody reads r to its end, comparing it with want as it goes.
func sameBody(r io.Reader, want []byte) error {
	buf := make([]byte, 64<<10)
	off := 0
	for {
		n, err := r.Read(buf)
		if off+n > len(want) || !bytes.Equal(buf[:n], want[off:off+n]) {
			return fmt.Errorf("body differs from the origin's at or after byte %d", off)
		}
		off += n
		if err == io.EOF {
			if off != len(want) {
				return fmt.Errorf("body of %d bytes, the origin's has %d", off, len(want))
			}
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func diskStats(e *Edge) config.Size {
	if st := e.Stats().Disk; st != nil {
		return config.Size(st.Entries)
	}
	return 0
}

func TestDiskTierSurvivesRestart(t *testing.T) {
	objs := map[string][]byte{"small": payload(4<<10, 1), "large": payload(3<<20, 2)}
	o := newOrigin(t, &clock{}, objects(objs))
	dir := t.TempDir()
	snap := diskSnap(o.URL, dir, 64<<20)

	h := newHarness(t, nil, snap)
	for name, b := range objs {
		r := h.get("/" + name)
		if r.status != 200 || r.body != string(b) {
			t.Fatalf("%s: status %d, %d bytes, want %d", name, r.status, len(r.body), len(b))
		}
	}
	// A graceful stop writes what is queued: no wait for the queue here.
	if r := h.get("/large"); r.body != string(objs["large"]) {
		t.Fatalf("large again: %d bytes", len(r.body))
	}
	if r := h.get("/large"); !r.hit() || r.body != string(objs["large"]) {
		t.Fatalf("large from disk: hit %v (%s), %d bytes", r.hit(), r.cs(), len(r.body))
	}
	fetches := o.count()
	h.e.Close(context.Background())
	if n := h.e.Stats().Disk; n != nil {
		t.Fatalf("disk tier still attached after Close: %+v", n)
	}

	h2 := newHarness(t, nil, snap)
	for name, b := range objs {
		r := h2.get("/" + name)
		if !r.hit() || r.body != string(b) {
			t.Errorf("%s after restart: %s, %d bytes", name, r.cs(), len(r.body))
		}
	}
	// A range of the large object from its file.
	r := h2.get("/large", "Range", "bytes=1000000-1000099")
	if r.status != 206 || r.body != string(objs["large"][1000000:1000100]) || !r.hit() {
		t.Errorf("range after restart: %d %s %d bytes", r.status, r.cs(), len(r.body))
	}
	if o.count() != fetches {
		t.Errorf("origin fetched %d times after the restart", o.count()-fetches)
	}
}

// gatedOrigin sends the first part of a large body, then waits for open
// before the rest; it counts the requests that reached it.
type gatedOrigin struct {
	url   string
	body  []byte
	first int
	open  chan struct{}
	n     atomic.Int32
	// cut, when set, ends the body after the first part by closing the
	// connection.
	cut     atomic.Bool
	chunked bool
}

func newGatedOrigin(t *testing.T, body []byte, first int, cut, chunked bool) *gatedOrigin {
	g := &gatedOrigin{body: body, first: first, open: make(chan struct{}), chunked: chunked}
	g.cut.Store(cut)
	o := newOrigin(t, &clock{}, func(w http.ResponseWriter, r *http.Request) {
		g.n.Add(1)
		w.Header().Set("Cache-Control", "max-age=3600")
		w.Header().Set("ETag", `"gated"`)
		if !g.chunked {
			w.Header().Set("Content-Length", strconv.Itoa(len(g.body)))
		}
		w.Write(g.body[:g.first])
		w.(http.Flusher).Flush()
		select {
		case <-g.open:
		case <-r.Context().Done():
			return
		}
		if g.cut.Load() {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		w.Write(g.body[g.first:])
	})
	g.url = o.URL
	return g
}

// TestStreamingFill: one origin fetch for 100 concurrent clients of a
// cold object, each of which gets the first bytes while the origin still
// holds back the rest, and all get the origin's body.
func TestStreamingFill(t *testing.T) {
	for _, tc := range []struct {
		name    string
		size    int
		first   int // what the origin sends before it holds back the rest
		disk    bool
		chunked bool
	}{
		{"memory tier", 768 << 10, 100 << 10, false, false},
		{"disk tier", 4 << 20, 100 << 10, true, false},
		{"disk tier, chunked", 3 << 20, 100 << 10, true, true},
		// First parts smaller than the server's buffers: they must be
		// flushed to the clients while the fill waits for the origin.
		{"memory tier, small first part", 768 << 10, 700, false, false},
		{"disk tier, small first part", 4 << 20, 700, true, false},
		{"disk tier, chunked, small first part", 3 << 20, 700, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := payload(tc.size, 3)
			g := newGatedOrigin(t, body, tc.first, false, tc.chunked)
			snap := diskSnap(g.url, t.TempDir(), 64<<20)
			if !tc.disk {
				snap.Site.Nodes[0].Cache.Disk = nil
			}
			h := newHarness(t, nil, snap)
			const clients = 100
			tr := &http.Transport{MaxConnsPerHost: 0, MaxIdleConnsPerHost: clients}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr, Timeout: 30 * time.Second}
			var firstBytes, done sync.WaitGroup
			firstBytes.Add(clients)
			done.Add(clients)
			errs := make(chan error, clients)
			for range clients {
				go func() {
					defer done.Done()
					req, _ := http.NewRequest("GET", h.base+"/big", nil)
					req.Host = "shop.cdn.test"
					resp, err := c.Do(req)
					if err != nil {
						firstBytes.Done()
						errs <- err
						return
					}
					defer resp.Body.Close()
					head := make([]byte, min(tc.first, 1000))
					_, err = io.ReadFull(resp.Body, head)
					firstBytes.Done()
					if err != nil {
						errs <- fmt.Errorf("first bytes: %w", err)
						return
					}
					if err := sameBody(io.MultiReader(bytes.NewReader(head), resp.Body), body); err != nil {
						errs <- err
					}
				}()
			}
			// Every client has its first bytes while the origin has sent
			// only the first part: the fill streams.
			got := make(chan struct{})
			go func() { firstBytes.Wait(); close(got) }()
			select {
			case <-got:
			case <-time.After(20 * time.Second):
				close(g.open)
				t.Fatalf("the clients did not get the first %d bytes while the origin held back the rest", tc.first)
			}
			close(g.open)
			done.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			if n := g.n.Load(); n != 1 {
				t.Errorf("origin fetched %d times for %d clients", n, clients)
			}
			eventually(t, "a hit", func() bool { return h.get("/big").hit() })
			if r := h.get("/big"); r.body != string(body) {
				t.Errorf("hit body differs (%d bytes)", len(r.body))
			}
		})
	}
}

// TestOriginDiesMidBody: a body that ends short is never stored, and
// every client reading it sees a cut connection, not a whole body.
func TestOriginDiesMidBody(t *testing.T) {
	for _, tc := range []struct {
		name    string
		size    int
		disk    bool
		chunked bool
	}{
		{"memory tier, Content-Length", 768 << 10, false, false},
		{"disk tier, Content-Length", 3 << 20, true, false},
		{"disk tier, chunked", 3 << 20, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := payload(tc.size, 4)
			g := newGatedOrigin(t, body, 200<<10, true, tc.chunked)
			dir := t.TempDir()
			snap := diskSnap(g.url, dir, 64<<20)
			if !tc.disk {
				snap.Site.Nodes[0].Cache.Disk = nil
			}
			h := newHarness(t, nil, snap)
			const clients = 3
			var ready, done sync.WaitGroup
			ready.Add(clients)
			done.Add(clients)
			results := make(chan error, clients)
			for range clients {
				go func() {
					defer done.Done()
					req, _ := http.NewRequest("GET", h.base+"/big", nil)
					req.Host = "shop.cdn.test"
					resp, err := (&http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{}}).Do(req)
					if err != nil {
						ready.Done()
						results <- err
						return
					}
					defer resp.Body.Close()
					_, err = io.ReadFull(resp.Body, make([]byte, 1000))
					ready.Done()
					if err != nil {
						results <- err
						return
					}
					_, err = io.ReadAll(resp.Body)
					results <- err
				}()
			}
			ready.Wait()
			close(g.open)
			done.Wait()
			close(results)
			for err := range results {
				if err == nil {
					t.Error("a client read a complete-looking body from a cut fill")
				}
			}
			// Not stored: the next request goes to the origin, which now
			// answers whole.
			g.cut.Store(false)
			r := h.get("/big")
			if r.status != 200 || r.body != string(body) || r.hit() {
				t.Fatalf("after the cut: %d %s, %d bytes", r.status, r.cs(), len(r.body))
			}
			if n := g.n.Load(); n != 2 {
				t.Errorf("origin fetched %d times, want 2", n)
			}
			if ents, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(ents) != 0 {
				t.Errorf("%d temporary files left behind", len(ents))
			}
		})
	}
}

// TestDiskFull: a disk tier on a 1 MiB tmpfs fills up; the edge keeps
// answering every request whole from memory and the origin, and says it
// is degraded. The edge runs as a child process in a mount namespace of
// its own (unshare -m), where it mounts the tmpfs: nothing outlives it.
func TestDiskFull(t *testing.T) {
	testenv.NeedRoot(t)
	unshare := testenv.NeedTool(t, "unshare", "util-linux")
	testenv.NeedTool(t, "mount", "mount")
	objs := map[string][]byte{"large": payload(3<<20, 99)}
	names := []string{"large"}
	for i := range 12 {
		names = append(names, "small"+strconv.Itoa(i))
		objs[names[i+1]] = payload(200<<10, byte(i))
	}
	o := newOrigin(t, &clock{}, objects(objs))
	// The tier believes it has 64 MiB: the file system runs out first,
	// in the middle of the large object's file, whose client then gets
	// the rest from the origin (a Range request); the small objects are
	// answered from memory and the origin while the tier is degraded.
	c := childEdge(t, o.URL, t.TempDir(), []string{childTmpfs + "=1m"}, unshare, "-m", "--propagation", "private")
	for round := range 2 {
		for _, name := range names {
			b := objs[name]
			r := getFrom(t, c.base, "/"+name)
			if r.status != 200 || r.body != string(b) {
				t.Fatalf("round %d %s: status %d, %d of %d bytes (%s)", round, name, r.status, len(r.body), len(b), r.cs())
			}
		}
	}
	resumed := false
	o.mu.Lock()
	for _, r := range o.reqs {
		if r.URL.Path == "/large" && strings.HasPrefix(r.Header.Get("Range"), "bytes=") && r.Header.Get("If-Range") != "" {
			resumed = true
		}
	}
	o.mu.Unlock()
	if !resumed {
		t.Error("the client of the fill that hit the full disk did not resume from the origin")
	}
	var stats struct{ Disk *disk.Stats }
	resp, err := http.Get(c.admin + "/v1/edge/cache")
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&stats)
	resp.Body.Close()
	if st := stats.Disk; st == nil || st.WriteErrors == 0 || st.Degraded == "" {
		t.Fatalf("not degraded on a full disk: %+v", st)
	}
	resp, err = http.Get(c.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(m), "intercloud_edge_disk_degraded 1") {
		t.Error("metrics do not say the disk tier is degraded")
	}
}

// TestDegradedReport: a degraded disk tier leaves the edge ready and says
// so in its report (what /readyz and intercloud status show).
func TestDegradedReport(t *testing.T) {
	o := newOrigin(t, &clock{}, objects(map[string][]byte{"x": payload(400<<10, 1)}))
	dir := t.TempDir()
	h := newHarness(t, nil, diskSnap(o.URL, dir, 64<<20))
	// Unwritable from now on: every new file fails.
	if err := os.RemoveAll(filepath.Join(dir, "tmp")); err != nil {
		t.Fatal(err)
	}
	if r := h.get("/x"); r.status != 200 || len(r.body) != 400<<10 {
		t.Fatalf("%d, %d bytes", r.status, len(r.body))
	}
	// The write that fails runs behind the request.
	var rep status.RoleReport
	eventually(t, "the failed write seen", func() bool {
		rep = status.RoleReport{}
		h.e.Report(&rep)
		return rep.Degraded != ""
	})
	if h.e.Ready() != nil || !strings.Contains(rep.Degraded, "disk tier") {
		t.Errorf("Ready %v, report degraded %q: want ready and degraded", h.e.Ready(), rep.Degraded)
	}
	if !strings.Contains(scrape(t, h), "intercloud_edge_disk_degraded 1") {
		t.Error("metrics do not say the disk tier is degraded")
	}
}

func scrape(t *testing.T, h *harness) string {
	t.Helper()
	var b strings.Builder
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
			fmt.Fprintf(&b, "%s %v\n", mf.GetName(), v)
		}
	}
	return b.String()
}

// TestSliceFill: a range miss with a disk tier is filled in slices of
// cache.slice bytes (256 KiB here): only the slices the range covers are
// fetched, and later ranges in them are hits.
func TestSliceFill(t *testing.T) {
	obj := payload(3<<20+123, 9)
	objs := map[string][]byte{"video": obj}
	plain := objects(objs)
	o := newOrigin(t, &clock{}, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/norange" {
			r.Header.Del("Range") // an origin that ignores ranges
			r.URL.Path = "/video"
		}
		plain(w, r)
	})
	h := newHarness(t, nil, diskSnap(o.URL, t.TempDir(), 64<<20))
	const S = 256 << 10
	ranges := func() []string {
		o.mu.Lock()
		defer o.mu.Unlock()
		var rs []string
		for _, r := range o.reqs {
			rs = append(rs, r.Header.Get("Range"))
		}
		o.reqs = nil
		return rs
	}
	for _, tc := range []struct {
		name, rng  string
		lo, hi     int // the body is obj[lo:hi]
		hit        bool
		originWant []string
	}{
		{"one slice", "bytes=1000000-1000099", 1000000, 1000100, false, []string{"bytes=786432-1048575"}},
		{"same slice again", "bytes=1000000-1000099", 1000000, 1000100, true, nil},
		{"across two slices, one new", "bytes=1048000-1049000", 1048000, 1049001, false, []string{"bytes=1048576-1310719"}},
		{"suffix: the first slice tells the length", "bytes=-100", len(obj) - 100, len(obj), false,
			[]string{"bytes=0-262143", "bytes=3145728-3407871"}},
		{"open-ended to the end", "bytes=3145000-", 3145000, len(obj), false, []string{"bytes=2883584-3145727"}},
	} {
		r := h.get("/video", "Range", tc.rng)
		if r.status != 206 || r.body != string(obj[tc.lo:tc.hi]) {
			t.Fatalf("%s: %d, %d bytes (%s)", tc.name, r.status, len(r.body), r.cs())
		}
		if want := fmt.Sprintf("bytes %d-%d/%d", tc.lo, tc.hi-1, len(obj)); r.header.Get("Content-Range") != want {
			t.Errorf("%s: Content-Range %q, want %q", tc.name, r.header.Get("Content-Range"), want)
		}
		if r.hit() != tc.hit {
			t.Errorf("%s: Cache-Status %q", tc.name, r.cs())
		}
		if got := ranges(); fmt.Sprint(got) != fmt.Sprint(tc.originWant) {
			t.Errorf("%s: origin asked for %q, want %q", tc.name, got, tc.originWant)
		}
	}
	if r := h.get("/video", "Range", fmt.Sprintf("bytes=%d-", len(obj)+10)); r.status != 416 {
		t.Errorf("range past the end: %d", r.status)
	}
	ranges()
	// An origin that answers 200 to a Range: passed through whole.
	if r := h.get("/norange", "Range", "bytes=10-19"); r.status != 200 || r.body != string(obj) {
		t.Errorf("origin without ranges: %d, %d bytes", r.status, len(r.body))
	}
}

// TestSliceFromDisk: slices larger than what the memory tier keeps live
// on disk only and are answered from their files once written, alone
// and across two of them, without asking the origin again.
func TestSliceFromDisk(t *testing.T) {
	obj := payload(5<<20+77, 4)
	o := newOrigin(t, &clock{}, objects(map[string][]byte{"video": obj}))
	snap := diskSnap(o.URL, t.TempDir(), 64<<20)
	const S = 2 << 20 // above the memory tier's 1 MiB
	snap.Site.Nodes[0].Cache.Slice = S
	h := newHarness(t, nil, snap)
	for _, rng := range []string{"bytes=2200000-2200099", "bytes=0-99"} {
		if r := h.get("/video", "Range", rng); r.status != 206 {
			t.Fatalf("%s: %d (%s)", rng, r.status, r.cs())
		}
	}
	// Written behind: until then a request may fetch the slice again.
	eventually(t, "slice 1 from disk", func() bool {
		return h.get("/video", "Range", "bytes=2200000-2200099").hit()
	})
	eventually(t, "slice 0 from disk", func() bool {
		return h.get("/video", "Range", "bytes=0-99").hit()
	})
	fetches := o.count()
	r := h.get("/video", "Range", "bytes=2200000-2200099")
	if !r.hit() || r.body != string(obj[2200000:2200100]) {
		t.Fatalf("slice from disk: %s, %d bytes", r.cs(), len(r.body))
	}
	// Across slices 0 and 1, both on disk.
	r = h.get("/video", "Range", "bytes=2097000-2098000")
	if r.status != 206 || r.body != string(obj[2097000:2098001]) {
		t.Fatalf("across two disk slices: %d, %d bytes (%s)", r.status, len(r.body), r.cs())
	}
	if n := o.count(); n != fetches {
		t.Errorf("the origin was asked %d more times for slices on disk", n-fetches)
	}
}

// TestDiskTierInvalidation: an invalidation drops the disk tier's copies
// too, and they stay gone after a restart.
func TestDiskTierInvalidation(t *testing.T) {
	objs := map[string][]byte{"a/small": payload(4<<10, 10), "a/large": payload(2<<20, 11), "b/kept": payload(2<<20, 12)}
	o := newOrigin(t, &clock{}, objects(objs))
	dir := t.TempDir()
	snap := diskSnap(o.URL, dir, 64<<20)
	h := newHarness(t, nil, snap)
	for name := range objs {
		h.get("/" + name)
	}
	eventually(t, "three objects on disk", func() bool { return diskStats(h.e) == 3 })
	// Out of memory, on disk only: the invalidation must find them there.
	var ents []*entry
	h.e.tier.mem.Each(func(e *entry) { ents = append(ents, e) })
	for _, e := range ents {
		h.e.tier.dropMem(e)
	}
	if st := h.e.Stats(); st.Entries != 0 {
		t.Fatalf("%d entries left in memory", st.Entries)
	}
	if err := h.e.Invalidate(context.Background(), status.Invalidation{ID: "i", Distribution: "shop", Paths: []string{"/a/*"}}); err != nil {
		t.Fatal(err)
	}
	h.e.Close(context.Background())
	h2 := newHarness(t, nil, snap)
	for name := range objs {
		r := h2.get("/" + name)
		if want := name == "b/kept"; r.hit() != want || r.body != string(objs[name]) {
			t.Errorf("%s after invalidation and restart: %s (hit wanted: %v)", name, r.cs(), want)
		}
	}
}

// TestLargeObjectsDiskOnly: with a disk tier, a body above 1 MiB is kept
// on disk only (its header in memory) even when maxObject would let the
// memory tier hold it: its hits are sent from the file.
func TestLargeObjectsDiskOnly(t *testing.T) {
	objs := map[string][]byte{"two": payload(2<<20, 13), "small": payload(300<<10, 14)}
	o := newOrigin(t, &clock{}, objects(objs))
	snap := diskSnap(o.URL, t.TempDir(), 64<<20)
	snap.Site.Nodes[0].Cache.MaxObject = 16 << 20
	h := newHarness(t, nil, snap)
	for name, b := range objs {
		h.get("/" + name)
		eventually(t, name+" stored", func() bool { return h.get("/" + name).hit() })
		if r := h.get("/" + name); r.body != string(b) {
			t.Fatalf("%s: %d bytes", name, len(r.body))
		}
	}
	onDisk := map[string]bool{}
	h.e.tier.mem.Each(func(e *entry) { onDisk[e.path] = e.disk != nil && e.body == nil })
	if !onDisk["/two"] || onDisk["/small"] {
		t.Errorf("held on disk only: %v; want /two only", onDisk)
	}
}

// TestUnknownLengthOutgrowsTier: a chunked body that turns out larger
// than the disk tier is not stored, and its client still gets all of it
// (the rest by a Range request to the origin).
func TestUnknownLengthOutgrowsTier(t *testing.T) {
	body := payload(3<<20, 15)
	ranged := objects(map[string][]byte{"big": body})
	o := newOrigin(t, &clock{}, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Range") != "" {
			ranged(w, r)
			return
		}
		w.Header().Set("Cache-Control", "max-age=3600")
		w.Header().Set("ETag", `"3145728-`+fmt.Sprintf("%x", body[:8])+`"`)
		for off := 0; off < len(body); off += 64 << 10 {
			w.Write(body[off : off+64<<10])
			w.(http.Flusher).Flush() // no Content-Length: chunked
		}
	})
	h := newHarness(t, nil, diskSnap(o.URL, t.TempDir(), 2<<20))
	if r := h.get("/big"); r.status != 200 || r.body != string(body) {
		t.Fatalf("%d, %d of %d bytes (%s)", r.status, len(r.body), len(body), r.cs())
	}
	if r := o.last(); r.Header.Get("Range") == "" {
		t.Error("the rest was not asked with a Range")
	}
	if st := h.e.Stats().Disk; st.Entries != 0 {
		t.Errorf("%d objects stored in a tier smaller than the body", st.Entries)
	}
}

// TestDiskBodiesStayOffHeap: 64 MiB of objects stored on disk and hit
// again leave the heap about where it was (bodies above 1 MiB are never
// held in memory), whatever the disk tier holds.
func TestDiskBodiesStayOffHeap(t *testing.T) {
	objs := map[string][]byte{}
	for i := range 32 {
		objs["o"+strconv.Itoa(i)] = payload(2<<20, byte(i))
	}
	o := newOrigin(t, &clock{}, objects(objs))
	snap := diskSnap(o.URL, t.TempDir(), 256<<20)
	// A memory tier that could hold them all, as 64 MiB objects are
	// allowed by default.
	snap.Site.Nodes[0].Cache.Memory, snap.Site.Nodes[0].Cache.MaxObject = 256<<20, 64<<20
	h := newHarness(t, nil, snap)
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	h.get("/none") // the edge's own start-up allocations
	before := heap()
	for round := range 2 {
		for name, b := range objs {
			if r := h.get("/" + name); r.body != string(b) {
				t.Fatalf("round %d %s: %d bytes", round, name, len(r.body))
			}
		}
	}
	eventually(t, "all on disk", func() bool { return diskStats(h.e) == 32 })
	if grew := int64(heap()) - int64(before); grew > 16<<20 {
		t.Errorf("heap grew by %d MiB for 64 MiB of disk objects", grew>>20)
	}
}

// TestDiskUnavailable: a disk tier that cannot be opened does not stop
// the edge: it serves from memory, says it is degraded, and takes the
// tier when a later revision (or SIGHUP) finds it usable.
func TestDiskUnavailable(t *testing.T) {
	o := newOrigin(t, &clock{}, objects(map[string][]byte{"x": payload(10<<10, 2)}))
	dir := t.TempDir()
	bad := filepath.Join(dir, "a-file")
	if err := os.WriteFile(bad, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, nil, diskSnap(o.URL, bad, 64<<20))
	h.get("/x")
	if r := h.get("/x"); r.status != 200 || !r.hit() {
		t.Fatalf("from memory: %d %s", r.status, r.cs())
	}
	if h.e.Ready() != nil || !strings.Contains(h.e.Degraded(), "a-file") || h.e.Stats().Disk != nil {
		t.Fatalf("Ready %v, Degraded %q, disk %+v", h.e.Ready(), h.e.Degraded(), h.e.Stats().Disk)
	}
	if !strings.Contains(scrape(t, h), "intercloud_edge_disk_degraded 1") {
		t.Error("metrics do not say the disk tier is degraded")
	}
	snap := diskSnap(o.URL, filepath.Join(dir, "cache"), 64<<20)
	snap.Revision = 2
	if err := role.Apply(context.Background(), h.e, snap); err != nil {
		t.Fatal(err)
	}
	if h.e.Degraded() != "" || h.e.Stats().Disk == nil {
		t.Errorf("after a usable path: Degraded %q, disk %+v", h.e.Degraded(), h.e.Stats().Disk)
	}
}

// TestDiskObjectRevalidated: a stale object on disk only is revalidated
// with its producer; the 304 keeps the body on disk, the refreshed
// metadata is written there too (it survives a restart) and the body is
// never fetched again.
func TestDiskObjectRevalidated(t *testing.T) {
	clk := &clock{}
	body := payload(2<<20, 16)
	o := newOrigin(t, clk, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("ETag", `"v1"`)
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Write(body)
	})
	dir := t.TempDir()
	snap := diskSnap(o.URL, dir, 64<<20)
	h := newHarness(t, clk, snap)
	h.get("/v")
	eventually(t, "a hit", func() bool { return h.get("/v").hit() })
	clk.advance(2 * time.Minute)
	r := h.get("/v")
	if r.status != 200 || r.body != string(body) || !strings.Contains(r.cs(), "fwd=stale") || !strings.Contains(r.cs(), "fwd-status=304") {
		t.Fatalf("revalidation: %d %s, %d bytes", r.status, r.cs(), len(r.body))
	}
	if r := h.get("/v"); !r.hit() || r.body != string(body) {
		t.Fatalf("after the 304: %s, %d bytes", r.cs(), len(r.body))
	}
	h.e.Close(context.Background())
	h2 := newHarness(t, clk, snap)
	if r := h2.get("/v"); !r.hit() || r.body != string(body) {
		t.Errorf("refreshed copy after a restart: %s, %d bytes", r.cs(), len(r.body))
	}
	full := 0
	o.mu.Lock()
	for _, r := range o.reqs {
		if r.Header.Get("If-None-Match") == "" {
			full++
		}
	}
	o.mu.Unlock()
	if full != 1 {
		t.Errorf("the body was fetched %d times, want 1", full)
	}
}

// TestDiskVariantsSurviveRestart: the Vary marker and its variants are
// kept on disk; after a restart each variant is a hit for its clients.
func TestDiskVariantsSurviveRestart(t *testing.T) {
	o := newOrigin(t, &clock{}, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=3600")
		w.Header().Set("Vary", "Accept-Language")
		io.WriteString(w, "hello in "+r.Header.Get("Accept-Language"))
	})
	snap := diskSnap(o.URL, t.TempDir(), 64<<20)
	snap.Distributions[0].Spec.Behaviors[0].Forward.Headers = []string{"*"}
	h := newHarness(t, nil, snap)
	for _, lang := range []string{"en", "ko"} {
		h.get("/greet", "Accept-Language", lang)
	}
	eventually(t, "marker and variants on disk", func() bool { return diskStats(h.e) == 3 })
	h.e.Close(context.Background())
	h2 := newHarness(t, nil, snap)
	for _, lang := range []string{"en", "ko"} {
		if r := h2.get("/greet", "Accept-Language", lang); !r.hit() || r.body != "hello in "+lang {
			t.Errorf("%s after restart: %s %q", lang, r.cs(), r.body)
		}
	}
	if o.count() != 2 {
		t.Errorf("origin asked %d times, want 2", o.count())
	}
}

// TestDiskCommitAfterDel: a disk write is not committed when its key (or,
// for a variant, its object) was deleted since it started, and is when
// only other keys were: a fill of a large object survives unrelated
// invalidations.
func TestDiskCommitAfterDel(t *testing.T) {
	mem, err := newMemStore(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	tr := newTiered(mem, func() int64 { return 1 << 20 }, newMemberIDs(), time.Now, slog.New(slog.NewTextHandler(io.Discard, nil)))
	s, err := disk.Open(t.TempDir(), 64<<20, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	tr.disk.Store(&diskTier{s: s})
	key := "shop.cdn.test/a"
	variant := variantKey(key, 7, "Accept-Encoding:gzip\n")
	// Another key in another stripe: a shared stripe would (rarely, by
	// design) drop the write.
	other := key
	for i := 0; tr.stripe(other) == tr.stripe(key); i++ {
		other = "shop.cdn.test/b" + strconv.Itoa(i)
	}
	for _, tc := range []struct {
		name, write, del string
		committed        bool
	}{
		{"nothing deleted", key, "", true},
		{"another key deleted", key, other, true},
		{"its key deleted", key, key, false},
		{"a variant, its object deleted", variant, key, false},
		{"a variant, another object deleted", variant, other, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gen := tr.delGen(tc.write)
			w, err := s.Create(tc.write, nil, time.Time{}, 5)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			if _, err := w.Write([]byte("hello")); err != nil {
				t.Fatal(err)
			}
			if tc.del != "" {
				tr.Del(tc.del)
			}
			_, err = tr.commit(w, tc.write, gen)
			if (err == nil) != tc.committed {
				t.Fatalf("commit: %v, want committed %v", err, tc.committed)
			}
			_, lerr := s.Lookup(tc.write)
			if (lerr == nil) != tc.committed {
				t.Fatalf("lookup after commit: %v, want found %v", lerr, tc.committed)
			}
			s.Delete(tc.write)
		})
	}
}
