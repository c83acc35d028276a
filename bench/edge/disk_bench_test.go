package edge_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/intercloud/intercloud/bench/internal/nodeproc"
	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/test/testenv"
)

// The disk tier side by side: the edge with `cache.disk`, nginx's
// proxy_cache (on disk by nature) and Varnish with `-s file`. Sizes can
// be lowered for a smoke run: EDGE_BENCH_DISK_OBJECT (10MiB),
// EDGE_BENCH_COLD_SIZE (1GiB), EDGE_BENCH_WARM_OBJECTS (64 of 1 MiB),
// EDGE_BENCH_DISK_DURATION (each wrk run, 3s).

func envSize(b *testing.B, name string, def int64) int64 {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	s, err := config.ParseSize(v)
	if err != nil || s <= 0 {
		b.Fatalf("%s=%q: %v", name, v, err)
	}
	return int64(s)
}

// diskOrigin serves /big (a disk-tier hit object), /cold/* (one large
// object per path, streamed from a pattern, never held whole) and
// /warm/N (1 MiB objects), and counts requests per path.
type diskOrigin struct {
	addr   string
	mu     sync.Mutex
	counts map[string]int
}

func (o *diskOrigin) count(prefix string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for p, c := range o.counts {
		if strings.HasPrefix(p, prefix) {
			n += c
		}
	}
	return n
}

func startDiskOrigin(b *testing.B, bigSize, coldSize int64) *diskOrigin {
	o := &diskOrigin{counts: map[string]int{}}
	chunk := make([]byte, 256<<10)
	for i := range chunk {
		chunk[i] = byte(i)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		o.counts[r.URL.Path]++
		o.mu.Unlock()
		var size int64
		switch {
		case r.URL.Path == "/big":
			size = bigSize
		case strings.HasPrefix(r.URL.Path, "/cold/"):
			size = coldSize
		case strings.HasPrefix(r.URL.Path, "/warm/"):
			size = 1 << 20
		default:
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("ETag", `"`+r.URL.Path+`"`)
		w.Header().Set("Content-Length", fmt.Sprint(size))
		for sent := int64(0); sent < size; {
			n := min(int64(len(chunk)), size-sent)
			if _, err := w.Write(chunk[:n]); err != nil {
				return
			}
			sent += n
		}
	})}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	o.addr = ln.Addr().String()
	return o
}

// diskPeer is a peer that can be restarted on its cache directory.
type diskPeer struct {
	peer
	restart func()
}

func startEdgeDisk(b *testing.B, originAddr string, diskSize int64) diskPeer {
	port := freePort(b)
	dir := worldDir(b)
	snap := func() *config.Snapshot {
		return &config.Snapshot{
			Site: config.Site{Name: "bench", DNS: config.DNS{Zone: "cdn.test."}, Clouds: []config.Cloud{{Name: "c"}},
				Nodes: []config.Node{{Name: "bench", Cloud: "c", Roles: []config.Role{config.RoleEdge}, Address: "127.0.0.1",
					Listen: config.Listen{HTTP: fmt.Sprintf("127.0.0.1:%d", port)}, AccessLog: benchAccessLog(b),
					// Objects above 1 MiB live on disk only.
					Cache: config.Cache{Memory: cacheSize, MaxObject: 1 << 20,
						Disk: &config.DiskCache{Path: filepath.Join(dir, "cache"), Size: config.Size(diskSize)}}}}},
			Distributions: []config.Distribution{{Name: "shop", Spec: config.Spec{
				Origins:   map[string]config.Origin{"o": {URL: "http://" + originAddr}},
				Behaviors: []config.Behavior{{Path: "*", Target: "o"}},
			}}},
		}
	}
	n := nodeproc.Start(b, snap(), "bench")
	p := diskPeer{peer: peer{"edge", fmt.Sprintf("http://127.0.0.1:%d", port), nil}}
	p.pids = func() []int { return []int{n.Pid} }
	p.restart = func() {
		syscall.Kill(-n.Pid, syscall.SIGKILL)
		n = nodeproc.Start(b, snap(), "bench")
	}
	return p
}

func startNginxDisk(b *testing.B, originAddr string, diskSize int64) (diskPeer, bool) {
	// A cold object's concurrent clients wait on the lock for up to a
	// minute (the default 5 s would send them all to the origin).
	n, ok := launchNginx(b, originAddr, diskSize, "proxy_cache_lock_timeout 60s;")
	if !ok {
		return diskPeer{}, false
	}
	p := diskPeer{peer: peer{"nginx", n.url, nil}}
	p.pids = func() []int { return processTree(n.cmd.Process.Pid) }
	p.restart = func() {
		killTree(n.cmd)
		waitPortFree(b, n.port)
		n.cmd = n.start()
	}
	return p, true
}

func startVarnishFile(b *testing.B, originAddr string, diskSize int64) (diskPeer, bool) {
	bin, err := exec.LookPath("varnishd")
	if err != nil {
		testenv.NeedTool(b, "varnishd", "varnish")
		return diskPeer{}, false
	}
	dir := worldDir(b)
	port := freePort(b)
	args := []string{"-n", dir, "-a", fmt.Sprintf("127.0.0.1:%d", port), "-b", originAddr, "-F",
		"-s", fmt.Sprintf("file,%s,%d", filepath.Join(dir, "storage.bin"), diskSize), "-p", "default_ttl=3600"}
	cmd := startProcess(b, bin, args...)
	p := diskPeer{peer: peer{"varnish", fmt.Sprintf("http://127.0.0.1:%d", port), nil}}
	p.pids = func() []int { return processTree(cmd.Process.Pid) }
	p.restart = func() {
		killTree(cmd)
		waitPortFree(b, port)
		cmd = startProcess(b, bin, args...)
	}
	return p, true
}

// killTree kills cmd's process and every descendant with SIGKILL (Varnish's
// cache process leaves its manager's process group) and reaps cmd.
func killTree(cmd *exec.Cmd) {
	for _, pid := range processTree(cmd.Process.Pid) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	cmd.Wait()
}

// waitPortFree waits until nothing listens on the loopback port any more.
func waitPortFree(b *testing.B, port int) {
	for range 200 {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			return
		}
		c.Close()
		time.Sleep(50 * time.Millisecond)
	}
	b.Fatalf("port %d still taken after the peer was killed", port)
}

// get fetches path from p, reading at most limit bytes of the body (-1:
// all), and returns the time to the first body byte.
func get(p peer, path string, limit int64) (time.Duration, error) {
	c := &http.Client{Timeout: 5 * time.Minute}
	req, _ := http.NewRequest("GET", p.url+path, nil)
	req.Host = host
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	one := make([]byte, 1)
	if _, err := io.ReadFull(resp.Body, one); err != nil {
		return 0, err
	}
	ttfb := time.Since(start)
	if limit < 0 {
		_, err = io.Copy(io.Discard, resp.Body)
	} else {
		_, err = io.CopyN(io.Discard, resp.Body, limit)
	}
	if resp.StatusCode != 200 {
		return ttfb, fmt.Errorf("status %d", resp.StatusCode)
	}
	return ttfb, err
}

func msOf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkDiskTier: 10 MiB hits from disk (wrk), a cold large object
// asked by 100 clients at once (origin fetches; time to first byte
// against the origin's own), and the hit ratio after a kill -9 restart.
func BenchmarkDiskTier(b *testing.B) {
	testenv.NeedTool(b, "wrk", "wrk")
	bigSize := envSize(b, "EDGE_BENCH_DISK_OBJECT", 10<<20)
	coldSize := envSize(b, "EDGE_BENCH_COLD_SIZE", 1<<30)
	warm := int(envSize(b, "EDGE_BENCH_WARM_OBJECTS", 64))
	if warm < 2 {
		b.Fatal("EDGE_BENCH_WARM_OBJECTS must be at least 2")
	}
	dur := duration
	if v := os.Getenv("EDGE_BENCH_DISK_DURATION"); v != "" {
		dur = v
	}
	diskSize := 2*coldSize + int64(warm)<<20 + 4*bigSize
	o := startDiskOrigin(b, bigSize, coldSize)
	peers := []diskPeer{startEdgeDisk(b, o.addr, diskSize)}
	if p, ok := startNginxDisk(b, o.addr, diskSize); ok {
		peers = append(peers, p)
	}
	if p, ok := startVarnishFile(b, o.addr, diskSize); ok {
		peers = append(peers, p)
	}

	b.Run("hit-from-disk", func(b *testing.B) {
		rps, p99 := map[string][]float64{}, map[string][]float64{}
		for _, p := range peers {
			waitHit(b, p.peer, "/big")
			wrk(b, p.peer, "/big", "1s")
		}
		for range rounds {
			for _, p := range peers {
				r, l := wrk(b, p.peer, "/big", dur)
				rps[p.name] = append(rps[p.name], r)
				p99[p.name] = append(p99[p.name], l)
			}
		}
		for _, p := range peers {
			b.ReportMetric(median(rps[p.name]), p.name+"_req/s")
			b.ReportMetric(median(p99[p.name]), p.name+"_p99_ms")
			b.ReportMetric(rssMiB(p.pids()), p.name+"_rss_MiB")
		}
		b.ReportMetric(0, "ns/op")
	})

	b.Run("cold-100-clients", func(b *testing.B) {
		// The origin's own time to first byte, asked directly.
		direct := peer{name: "origin", url: "http://" + o.addr}
		ttfb, err := get(direct, "/cold/direct", 1<<20)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(msOf(ttfb), "origin_ttfb_ms")
		for _, p := range peers {
			// Each peer answers before its clients start: the subtest
			// can run alone, right after the peers were started.
			waitHit(b, p.peer, "/warm/ready-"+p.name)
		}
		for _, p := range peers {
			path := "/cold/" + p.name
			const clients = 100
			ttfbs := make([]time.Duration, clients)
			var failed atomic.Int32
			var firstErr sync.Once
			var wg sync.WaitGroup
			for i := range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					// Each reads the first MiB: enough to see when its
					// bytes start, not 100 copies of the object.
					d, err := get(p.peer, path, 1<<20)
					if err != nil {
						failed.Add(1)
						firstErr.Do(func() { b.Logf("%s: a client failed: %v", p.name, err) })
					}
					ttfbs[i] = d
				}()
			}
			wg.Wait()
			sort.Slice(ttfbs, func(i, j int) bool { return ttfbs[i] < ttfbs[j] })
			b.ReportMetric(float64(o.count(path)), p.name+"_origin_fetches")
			b.ReportMetric(msOf(ttfbs[clients/2]), p.name+"_ttfb_p50_ms")
			b.ReportMetric(msOf(ttfbs[clients*99/100]), p.name+"_ttfb_p99_ms")
			b.ReportMetric(float64(failed.Load()), p.name+"_failed")
		}
		b.ReportMetric(0, "ns/op")
	})

	b.Run("restart-hit-ratio", func(b *testing.B) {
		for _, p := range peers {
			prefix := "/warm/" + p.name + "/"
			for i := range warm {
				waitHit(b, p.peer, fmt.Sprintf("%s%d", prefix, i))
			}
			// Stored and settled: every object once more from cache.
			for i := range warm {
				get(p.peer, fmt.Sprintf("%s%d", prefix, i), -1)
			}
			time.Sleep(2 * time.Second)
			p.restart()
			waitHit(b, p.peer, prefix+"0")
			before := o.count(prefix)
			for i := range warm {
				if _, err := get(p.peer, fmt.Sprintf("%s%d", prefix, i), -1); err != nil {
					b.Errorf("%s after restart: %v", p.name, err)
				}
			}
			misses := o.count(prefix) - before
			// The first object was asked by waitHit before counting.
			b.ReportMetric(1-float64(misses)/float64(warm-1), p.name+"_restart_hit_ratio")
		}
		b.ReportMetric(0, "ns/op")
	})
}
