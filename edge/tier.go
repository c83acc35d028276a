package edge

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/edge/disk"
	"github.com/intercloud/intercloud/edge/httpcache"
	"github.com/intercloud/intercloud/internal/promreg"
)

// tiered is the edge's cacheStore: the memory tier (ristretto) in front
// of an optional disk tier, as ATS keeps a RAM cache in front of its
// spans. Every object stored goes to memory when small enough and to disk
// (written behind, off the request path); a disk hit is promoted to
// memory when small enough, else served from its file with sendfile and
// only its header kept in memory.
type tiered struct {
	mem     *memStore
	disk    atomic.Pointer[diskTier]
	memMax  func() int64 // the largest body the memory tier keeps
	members *memberIDs
	now     func() time.Time
	log     *slog.Logger

	// dels orders deletions against commits to disk, per key: an object
	// whose write started before a Del of its key (an invalidation, an
	// unsafe method) is not committed after it, and a Del of another key
	// leaves it alone. Keys share a stripe by hash, so that this costs no
	// memory per key; a collision at worst drops one write.
	dels [delStripes]delStripe
}

const delStripes = 256

// delStripe is the deletion count of the keys that hash to it; mu also
// holds a commit to disk against a Del of those keys, nothing else.
type delStripe struct {
	mu  sync.Mutex
	gen uint64
}

var delSeed = maphash.MakeSeed()

// stripe is key's deletion stripe. A variant shares its object's (the
// key up to "\x00v<gen>\x00", variantKey): a Del of the object, which
// drops its vary marker, keeps a variant being written from landing.
func (t *tiered) stripe(key string) *delStripe {
	if i := strings.LastIndex(key, "\x00v"); i >= 0 {
		key = key[:i]
	}
	return &t.dels[maphash.String(delSeed, key)%delStripes]
}

// diskTier is one opened disk store and its write-behind queue.
type diskTier struct {
	s    *disk.Store
	cfg  config.DiskCache
	jobs chan writeJob
	stop chan struct{}
	done chan struct{}
}

type writeJob struct {
	e    *entry
	ttl  time.Duration
	dels uint64 // delGen of the key when the job was queued
}

// writeQueue bounds the objects waiting to be written behind; a slow
// disk drops writes rather than memory or requests.
const writeQueue = 256

func newTiered(mem *memStore, memMax func() int64, members *memberIDs, now func() time.Time, log *slog.Logger) *tiered {
	return &tiered{mem: mem, memMax: memMax, members: members, now: now, log: log}
}

// openDiskTier opens the store at cfg.Path (scanning what it holds).
func openDiskTier(cfg config.DiskCache, log *slog.Logger) (*diskTier, error) {
	s, err := disk.Open(cfg.Path, int64(cfg.Size), log.With("disk", cfg.Path))
	if err != nil {
		return nil, err
	}
	return &diskTier{s: s, cfg: cfg, jobs: make(chan writeJob, writeQueue), stop: make(chan struct{}), done: make(chan struct{})}, nil
}

// setDisk swaps the disk tier (nil: memory only) and stops the old one's
// writer. Objects of the old tier stay in memory if they are there.
func (t *tiered) setDisk(d *diskTier) {
	if d != nil {
		go t.writeBehind(d)
	}
	if old := t.disk.Swap(d); old != nil && old != d {
		old.close()
	}
}

func (d *diskTier) close() {
	select {
	case <-d.stop:
	default:
		close(d.stop)
	}
	<-d.done
	d.s.Close()
}

// closeUnstarted releases a tier that was opened but never set.
func (d *diskTier) closeUnstarted() { close(d.done); d.close() }

func (t *tiered) Get(key string) (*entry, bool) {
	if e, ok := t.mem.Get(key); ok {
		return e, true
	}
	d := t.disk.Load()
	if d == nil {
		return nil, false
	}
	o, err := d.s.Lookup(key)
	if err != nil {
		if !errors.Is(err, disk.ErrNotFound) {
			t.log.Warn("disk tier lookup failed", "error", err)
		}
		return nil, false
	}
	e, err := t.decode(o.Key, o.Meta)
	if err != nil {
		t.log.Warn("dropped a disk object with unreadable metadata", "error", err)
		d.s.Delete(o.Key)
		return nil, false
	}
	e.size = o.BodyLen
	switch {
	case e.marker:
		// A vary marker: names and generation, no response.
	case o.BodyLen <= t.memMax():
		// Small: promoted to memory, body and all.
		f, err := d.s.OpenBody(o, 0)
		if err != nil {
			return nil, false
		}
		e.body = make([]byte, o.BodyLen)
		_, err = io.ReadFull(f, e.body)
		f.Close()
		if err != nil {
			t.log.Warn("disk tier read failed", "error", err)
			return nil, false
		}
		e.finalize()
	default:
		e.disk = &diskRef{d: d, o: o}
		e.finalize()
	}
	ttl := 365 * 24 * time.Hour // no expiry on disk: a year, without overflow
	if o.Expires != 0 {
		ttl = time.Unix(o.Expires, 0).Sub(t.now())
	}
	t.mem.Set(e, ttl)
	return e, true
}

// Set stores e in memory (when small enough) and writes it behind to disk.
func (t *tiered) Set(e *entry, ttl time.Duration) bool {
	ok := false
	if e.disk != nil || e.size <= t.memMax() {
		ok = t.mem.Set(e, ttl)
	}
	if d := t.disk.Load(); d != nil && ttl > 0 {
		j := writeJob{e: e, ttl: ttl, dels: t.delGen(e.key)}
		select {
		case d.jobs <- j:
			ok = true
		default:
			d.s.Dropped()
		}
	}
	return ok
}

// setMem stores an entry whose body is already committed to disk.
func (t *tiered) setMem(e *entry, ttl time.Duration) bool { return t.mem.Set(e, ttl) }

// Del drops key from both tiers. Only the count is taken under the
// stripe's lock: a commit of key that starts after it aborts, and the
// unlinks run outside any lock.
func (t *tiered) Del(key string) {
	st := t.stripe(key)
	st.mu.Lock()
	st.gen++
	st.mu.Unlock()
	t.mem.Del(key)
	if d := t.disk.Load(); d != nil {
		d.s.Delete(key)
	}
}

// dropMem forgets e's memory-tier copy (its disk file is gone) unless
// it was replaced meanwhile.
func (t *tiered) dropMem(e *entry) {
	if cur, ok := t.mem.Get(e.key); ok && cur == e {
		t.mem.Del(e.key)
	}
}

// delGen is the deletion count of key a write of it starts at.
func (t *tiered) delGen(key string) uint64 {
	st := t.stripe(key)
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.gen
}

// commit makes w's object (of key) visible unless key was deleted since
// the write started (delGen).
func (t *tiered) commit(w *disk.Writer, key string, dels uint64) (*disk.Object, error) {
	st := t.stripe(key)
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.gen != dels {
		w.Abort()
		return nil, errors.New("deleted while written")
	}
	return w.Commit()
}

// Each visits the memory tier, then the disk tier's objects not in it
// (reading every header on disk: for invalidations only).
func (t *tiered) Each(f func(*entry)) {
	seen := map[string]bool{}
	t.mem.Each(func(e *entry) { seen[e.key] = true; f(e) })
	if d := t.disk.Load(); d != nil {
		d.s.Walk(func(key string, meta []byte) bool {
			if !seen[key] {
				if e, err := t.decode(key, meta); err == nil {
					f(e)
				}
			}
			return false
		})
	}
}

func (t *tiered) Stats() StoreStats {
	st := t.mem.Stats()
	if d := t.disk.Load(); d != nil {
		ds := d.s.Stats()
		st.Disk = &ds
	}
	return st
}

func (t *tiered) SetCapacity(b int64) { t.mem.SetCapacity(b) }

func (t *tiered) Close() {
	t.setDisk(nil)
	t.mem.Close()
}

// writeBehind is the one goroutine that writes a disk tier's queue.
// Stopped (a graceful stop, a new tier), it writes what is queued first:
// a node stopped with SIGTERM finds those objects on disk when it starts.
func (t *tiered) writeBehind(d *diskTier) {
	defer close(d.done)
	for {
		select {
		case j := <-d.jobs:
			t.write(d, j)
		case <-d.stop:
			for {
				select {
				case j := <-d.jobs:
					t.write(d, j)
				default:
					return
				}
			}
		}
	}
}

func (t *tiered) write(d *diskTier, j writeJob) {
	meta, err := t.encode(j.e)
	if err != nil {
		t.log.Warn("cannot encode an object for disk", "key", j.e.key, "error", err)
		return
	}
	w, err := d.s.Create(j.e.key, meta, t.now().Add(j.ttl), j.e.size)
	if err != nil {
		return // counted and logged by the store
	}
	defer w.Close()
	if j.e.disk != nil {
		// A refreshed disk object: new metadata, the same body, copied
		// by the kernel with its checksum.
		var f *os.File
		if f, err = j.e.disk.d.s.OpenBody(j.e.disk.o, 0); err == nil {
			err = w.CopyBody(f, j.e.size, j.e.disk.o.BodyCRC)
			f.Close()
		}
	} else {
		_, err = w.Write(j.e.body)
	}
	if err != nil {
		w.Abort()
		return
	}
	o, err := t.commit(w, j.e.key, j.dels)
	if err == nil && j.e.disk != nil {
		// The memory copy names the file just replaced.
		ne := *j.e
		ne.disk = &diskRef{d: d, o: o}
		t.mem.Set(&ne, j.ttl)
	}
}

// diskRef is an entry's body in the disk tier.
type diskRef struct {
	d *diskTier
	o *disk.Object
}

// diskMeta is what the disk tier keeps of an entry besides its body.
// Members are named, not numbered: ids are handed out per process.
type diskMeta struct {
	Dist         string              `json:"dist"`
	Path         string              `json:"path"`
	Marker       bool                `json:"marker,omitempty"`
	VaryNames    []string            `json:"vary,omitempty"`
	Gen          uint64              `json:"gen,omitempty"`
	Producer     [4]string           `json:"producer"`
	Routed       [4]string           `json:"routed"`
	Status       int                 `json:"status"`
	Header       http.Header         `json:"header"`
	RequestTime  time.Time           `json:"requestTime"`
	ResponseTime time.Time           `json:"responseTime"`
	InitialAge   time.Duration       `json:"initialAge"`
	Fresh        httpcache.Freshness `json:"fresh"`
}

func (t *tiered) memberName(id memberID) [4]string {
	k, _ := t.members.name(id)
	return [4]string{k.dist, k.name, k.url, k.host}
}

func (t *tiered) encode(e *entry) ([]byte, error) {
	return json.Marshal(diskMeta{
		Dist: e.dist, Path: e.path, Marker: e.marker, VaryNames: e.varyNames, Gen: e.gen,
		Producer: t.memberName(e.producer), Routed: t.memberName(e.routed),
		Status: e.status, Header: e.header, RequestTime: e.requestTime, ResponseTime: e.responseTime,
		InitialAge: e.initialAge, Fresh: e.fresh,
	})
}

// decode makes an entry (without its body) from stored metadata.
func (t *tiered) decode(key string, meta []byte) (*entry, error) {
	var m diskMeta
	if err := json.Unmarshal(meta, &m); err != nil {
		return nil, fmt.Errorf("decode metadata of %q: %w", key, err)
	}
	if !m.Marker && (m.Status < 100 || m.Status > 999 || m.Header == nil) {
		return nil, fmt.Errorf("decode metadata of %q: no status or header", key)
	}
	id := func(n [4]string) memberID {
		if n == ([4]string{}) {
			return 0
		}
		return t.members.id(n[0], n[1], n[2], n[3])
	}
	return &entry{
		key: key, dist: m.Dist, path: m.Path, marker: m.Marker, varyNames: m.VaryNames, gen: m.Gen,
		producer: id(m.Producer), routed: id(m.Routed), status: m.Status, header: m.Header,
		requestTime: m.RequestTime, responseTime: m.ResponseTime, initialAge: m.InitialAge, fresh: m.Fresh,
	}, nil
}

// registerDiskMetrics exports the disk tier's accounting (zero without one).
func registerDiskMetrics(reg prometheus.Registerer, e *Edge) (*promreg.Group, error) {
	stat := func(name, help string, f func(disk.Stats) float64, counter bool) prometheus.Collector {
		fn := func() float64 {
			if d := e.tier.disk.Load(); d != nil {
				return f(d.s.Stats())
			}
			return 0
		}
		if counter {
			return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, fn)
		}
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, fn)
	}
	return promreg.Register(reg,
		stat("intercloud_edge_disk_bytes", "Bytes held by the disk tier.", func(s disk.Stats) float64 { return float64(s.Bytes) }, false),
		stat("intercloud_edge_disk_capacity_bytes", "Configured disk tier size.", func(s disk.Stats) float64 { return float64(s.Capacity) }, false),
		stat("intercloud_edge_disk_entries", "Objects held by the disk tier.", func(s disk.Stats) float64 { return float64(s.Entries) }, false),
		stat("intercloud_edge_disk_evictions_total", "Objects evicted from the disk tier for room.", func(s disk.Stats) float64 { return float64(s.Evictions) }, true),
		stat("intercloud_edge_disk_corrupt_total", "Object files dropped as half-written or damaged.", func(s disk.Stats) float64 { return float64(s.Corrupt) }, true),
		stat("intercloud_edge_disk_write_errors_total", "Failed writes to the disk tier.", func(s disk.Stats) float64 { return float64(s.WriteErrors) }, true),
		stat("intercloud_edge_disk_dropped_total", "Objects not written to disk (tier degraded or queue full).", func(s disk.Stats) float64 { return float64(s.Dropped) }, true),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "intercloud_edge_disk_degraded",
			Help: "1 while the configured disk tier takes no new objects (a write error, or it could not be opened)."}, func() float64 {
			if e.Degraded() != "" {
				return 1
			}
			return 0
		}),
	)
}
