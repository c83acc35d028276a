// Package disk is the edge's disk tier: one file per cached object, as
// nginx's proxy_cache keeps them, found through a compact in-memory index
// rebuilt from the files' headers when the store opens.
package disk

import (
	"cmp"
	"errors"
	"fmt"
	"hash/crc32"
	"hash/fnv"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
)

// ErrNotFound: the store holds no whole object under the key.
var ErrNotFound = errors.New("not in the disk tier")

// block is the allocation unit a file is accounted in.
const block = 4096

// retryAfter is how long the store refuses new writes after one failed
// (a full or failing disk): the edge keeps serving from memory and the
// origin meanwhile.
const retryAfter = 10 * time.Second

// maxEntries bounds the index, as nginx's keys_zone does: at about 100
// bytes an object it stays within 30 MiB of heap whatever the tier's
// size, so that the edge's RSS stays within its memory tier + 64 MiB.
// A tier of 20 GiB fills with objects averaging 70 KiB or more; smaller
// ones are evicted by count before the bytes run out.
const maxEntries = 300_000

// Store is the disk tier. It is safe for concurrent use.
type Store struct {
	dir string
	log *slog.Logger
	now func() time.Time

	mu       sync.Mutex
	idx      map[uint64]*item
	lru      item // sentinel: lru.next is the most recently used
	bytes    int64
	reserved int64
	size     int64
	maxItems int
	scanning bool // the start-up scan runs: the index is partial
	scanDone chan struct{}
	closing  chan struct{} // closed by Close: the scan stops
	closed   sync.Once

	seq       atomic.Uint64
	verifying singleflight.Group // body checks by file

	evictions, corrupt, writeErrors, dropped atomic.Uint64
	failedAt                                 atomic.Int64 // UnixNano of the last write error
	lastErr                                  atomic.Pointer[string]
}

// item is one object in the index: about 70 bytes with its map slot, so
// that a million objects cost some 70 MB of heap whatever their size.
type item struct {
	hash       uint64
	seq        uint64
	size       int64 // bytes on disk, whole blocks
	expires    int64 // Unix seconds; 0 never
	verified   bool  // the body's checksum was checked since the store opened
	prev, next *item
}

// Stats is the disk tier's accounting.
type Stats struct {
	Path        string `json:"path"`
	Capacity    int64  `json:"capacity"`
	Bytes       int64  `json:"bytes"`
	Entries     int    `json:"entries"`
	Evictions   uint64 `json:"evictions"`
	Corrupt     uint64 `json:"corrupt"`
	WriteErrors uint64 `json:"writeErrors"`
	// Dropped counts objects not written because the tier was degraded
	// or its write queue full.
	Dropped uint64 `json:"dropped"`
	// Degraded, when set, says why the tier takes no new objects now.
	Degraded string `json:"degraded,omitempty"`
}

// Open opens (creating) the store in dir, limited to size bytes. It
// removes what a crash left half-written and returns at once: the whole
// objects are indexed in the background, and until that is done a lookup
// of an object not indexed yet looks for its file directly.
func Open(dir string, size int64, log *slog.Logger) (*Store, error) {
	return open(dir, size, log, nil)
}

// open is Open; the scan waits for hold when it is set (tests).
func open(dir string, size int64, log *slog.Logger, hold chan struct{}) (*Store, error) {
	if size <= 0 {
		return nil, fmt.Errorf("disk cache %s: size must be positive, got %d", dir, size)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Store{dir: dir, log: log, now: time.Now, idx: map[uint64]*item{}, size: size, maxItems: maxEntries,
		scanning: true, scanDone: make(chan struct{}), closing: make(chan struct{})}
	s.lru.next, s.lru.prev = &s.lru, &s.lru
	// Sequence numbers grow across restarts, so the newer of two files
	// for one key (a crash between rename and unlink) is known.
	s.seq.Store(uint64(time.Now().UnixNano()))
	tmp := filepath.Join(dir, "tmp")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return nil, fmt.Errorf("disk cache: %w", err)
	}
	ents, err := os.ReadDir(tmp)
	if err != nil {
		return nil, fmt.Errorf("disk cache: %w", err)
	}
	for _, de := range ents {
		os.Remove(filepath.Join(tmp, de.Name()))
	}
	go func() {
		if hold != nil {
			select {
			case <-hold:
			case <-s.closing:
			}
		}
		s.scan()
	}()
	return s, nil
}

// Close stops the start-up scan if it still runs and waits for it, so
// that a tier given up (a new revision's path, the edge's Close) leaves
// no goroutine walking its directory. Objects already opened stay
// readable; the store is not to be used afterwards.
func (s *Store) Close() {
	s.closed.Do(func() { close(s.closing) })
	<-s.scanDone
}

// scan indexes every whole object, most recently written first in the
// LRU, and drops broken files.
func (s *Store) scan() {
	defer close(s.scanDone)
	start := time.Now()
	tmp := filepath.Join(s.dir, "tmp")
	var found []*item
	err := filepath.WalkDir(s.dir, func(p string, de fs.DirEntry, err error) error {
		select {
		case <-s.closing:
			return errClosed
		default:
		}
		if err != nil {
			return err
		}
		if de.IsDir() {
			if p == tmp {
				return filepath.SkipDir
			}
			return nil
		}
		hash, seq, ok := parseName(de.Name())
		if !ok || filepath.Dir(p) != s.leafDir(hash) {
			return nil // not ours
		}
		if it := s.checkOrDrop(p, hash, seq); it != nil {
			found = append(found, it)
		}
		return nil
	})
	switch {
	case errors.Is(err, errClosed):
		s.log.Info("disk cache closed before its scan ended", "found", len(found))
	case err != nil:
		s.log.Warn("disk cache scan incomplete", "error", err)
	}
	slices.SortFunc(found, func(a, b *item) int { return cmp.Compare(a.seq, b.seq) })
	s.mu.Lock()
	for _, it := range found {
		s.merge(it)
	}
	s.scanning = false
	s.evict()
	n, b := len(s.idx), s.bytes
	s.mu.Unlock()
	s.log.Info("disk cache indexed", "objects", n, "bytes", b, "took", time.Since(start))
}

// checkOrDrop checks a file found on disk, deleting it when broken.
func (s *Store) checkOrDrop(p string, hash, seq uint64) *item {
	it, err := s.check(p, hash, seq)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil // deleted meanwhile
	case err != nil:
		s.dropBroken(p, hash, seq, err)
		return nil
	}
	return it
}

// dropBroken deletes a broken file, counted once however many found it
// (the scan and a lookup may).
func (s *Store) dropBroken(p string, hash, seq uint64, why error) {
	s.mu.Lock()
	if it := s.idx[hash]; it != nil && it.seq == seq {
		s.unlink(it)
	}
	s.mu.Unlock()
	if os.Remove(p) == nil {
		s.corrupt.Add(1)
		s.log.Warn("dropped a broken object file", "file", p, "error", why)
	}
}

// merge indexes it unless a file at least as new is indexed for its key;
// two files for one key mean the older lost a race with a crash. s.mu is
// held.
func (s *Store) merge(it *item) {
	if old := s.idx[it.hash]; old != nil {
		if old.seq >= it.seq {
			if old.seq != it.seq {
				os.Remove(s.path(it.hash, it.seq))
			}
			return
		}
		s.unlink(old)
		os.Remove(s.path(old.hash, old.seq))
	}
	s.link(it)
}

// probe indexes the files of hash while the scan has not reached them.
func (s *Store) probe(hash uint64) {
	dir := s.leafDir(hash)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	prefix := fmt.Sprintf("%016x-", hash)
	for _, de := range ents {
		if !strings.HasPrefix(de.Name(), prefix) {
			continue
		}
		h, seq, ok := parseName(de.Name())
		if !ok || h != hash {
			continue
		}
		if it := s.checkOrDrop(filepath.Join(dir, de.Name()), hash, seq); it != nil {
			s.mu.Lock()
			if s.scanning {
				s.merge(it)
			}
			s.mu.Unlock()
		}
	}
}

// errClosed stops the scan of a closed store.
var errClosed = errors.New("disk cache closed")

// Indexed is closed once the start-up scan is done.
func (s *Store) Indexed() <-chan struct{} { return s.scanDone }

// check reads a file's header and sizes it.
func (s *Store) check(p string, hash, seq uint64) (*item, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	h, err := ReadHeader(f, st.Size())
	if err != nil {
		return nil, err
	}
	if keyHash(h.Key) != hash {
		return nil, fmt.Errorf("%w: key does not match the file name", ErrCorrupt)
	}
	return &item{hash: hash, seq: seq, size: blocks(st.Size()), expires: h.Expires}, nil
}

func blocks(n int64) int64 { return (n + block - 1) / block * block }

func keyHash(key string) uint64 {
	h := fnv.New64a()
	io.WriteString(h, key)
	return h.Sum64()
}

// leafDir spreads files over 256×256 directories, as nginx's levels=2:2.
func (s *Store) leafDir(hash uint64) string {
	return filepath.Join(s.dir, hex2(byte(hash)), hex2(byte(hash>>8)))
}

func hex2(b byte) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[b>>4], digits[b&15]})
}

func (s *Store) path(hash, seq uint64) string {
	return filepath.Join(s.leafDir(hash), fmt.Sprintf("%016x-%016x", hash, seq))
}

func parseName(n string) (hash, seq uint64, ok bool) {
	a, b, ok := strings.Cut(n, "-")
	if !ok || len(a) != 16 || len(b) != 16 {
		return 0, 0, false
	}
	h, err1 := strconv.ParseUint(a, 16, 64)
	q, err2 := strconv.ParseUint(b, 16, 64)
	return h, q, err1 == nil && err2 == nil
}

// link puts it in the index as the most recently used; s.mu is held.
func (s *Store) link(it *item) {
	s.idx[it.hash] = it
	it.prev, it.next = &s.lru, s.lru.next
	s.lru.next.prev = it
	s.lru.next = it
	s.bytes += it.size
}

// unlink takes it out of the index; s.mu is held.
func (s *Store) unlink(it *item) {
	if s.idx[it.hash] == it {
		delete(s.idx, it.hash)
	}
	it.prev.next, it.next.prev = it.next, it.prev
	it.prev, it.next = nil, nil
	s.bytes -= it.size
}

func (s *Store) touch(it *item) {
	it.prev.next, it.next.prev = it.next, it.prev
	it.prev, it.next = &s.lru, s.lru.next
	s.lru.next.prev = it
	s.lru.next = it
}

// evict removes least recently used objects until what is stored and
// reserved fits, in bytes and in count; s.mu is held.
func (s *Store) evict() {
	for (s.bytes+s.reserved > s.size || len(s.idx) > s.maxItems) && s.lru.prev != &s.lru {
		it := s.lru.prev
		s.unlink(it)
		os.Remove(s.path(it.hash, it.seq))
		s.evictions.Add(1)
	}
}

// Object is a whole object found in the store; its body is read with
// OpenBody.
type Object struct {
	Header
	hash, seq uint64
}

// Lookup finds the object stored under key and reads its header. The
// first lookup of an object after the store opened checks its body's
// checksum too: a file damaged while the edge was down is dropped, never
// served.
func (s *Store) Lookup(key string) (*Object, error) {
	hash := keyHash(key)
	s.mu.Lock()
	it := s.idx[hash]
	if it == nil && s.scanning {
		s.mu.Unlock()
		s.probe(hash)
		s.mu.Lock()
		it = s.idx[hash]
	}
	if it == nil {
		s.mu.Unlock()
		return nil, ErrNotFound
	}
	if it.expires != 0 && it.expires < s.now().Unix() {
		s.unlink(it)
		s.mu.Unlock()
		os.Remove(s.path(it.hash, it.seq))
		return nil, ErrNotFound
	}
	s.touch(it)
	seq, verified := it.seq, it.verified
	s.mu.Unlock()

	p := s.path(hash, seq)
	f, err := os.Open(p)
	if err != nil {
		s.drop(hash, seq)
		return nil, ErrNotFound
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("disk cache: %w", err)
	}
	h, err := ReadHeader(f, st.Size())
	if err == nil && !verified {
		// Concurrent first hits of one large object read it once.
		_, err, _ = s.verifying.Do(p, func() (any, error) { return nil, Verify(f, h) })
	}
	if err != nil {
		if errors.Is(err, ErrCorrupt) {
			s.dropBroken(p, hash, seq, err)
			return nil, ErrNotFound
		}
		return nil, fmt.Errorf("disk cache: %s: %w", p, err)
	}
	if h.Key != key {
		return nil, ErrNotFound // another key with the same hash
	}
	if !verified {
		s.mu.Lock()
		if it := s.idx[hash]; it != nil && it.seq == seq {
			it.verified = true
		}
		s.mu.Unlock()
	}
	return &Object{Header: h, hash: hash, seq: seq}, nil
}

// OpenBody opens o's file positioned at off in its body. The caller
// closes it; it stays readable if the object is replaced or evicted
// meanwhile. ErrNotFound: it was removed since Lookup.
func (s *Store) OpenBody(o *Object, off int64) (*os.File, error) {
	f, err := os.Open(s.path(o.hash, o.seq))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, ErrNotFound
		}
		return nil, fmt.Errorf("disk cache: %w", err)
	}
	if _, err := f.Seek(o.BodyOff+off, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("disk cache: %w", err)
	}
	return f, nil
}

// drop removes the object file hash-seq if the index still names it.
func (s *Store) drop(hash, seq uint64) {
	s.mu.Lock()
	if it := s.idx[hash]; it != nil && it.seq == seq {
		s.unlink(it)
	}
	s.mu.Unlock()
	os.Remove(s.path(hash, seq))
}

// Delete removes the object stored under key.
func (s *Store) Delete(key string) {
	hash := keyHash(key)
	s.mu.Lock()
	it := s.idx[hash]
	if it != nil {
		s.unlink(it)
	}
	scanning := s.scanning
	s.mu.Unlock()
	if it != nil {
		os.Remove(s.path(it.hash, it.seq))
	}
	if scanning {
		// Files the scan has not indexed yet must not come back.
		prefix := fmt.Sprintf("%016x-", hash)
		ents, _ := os.ReadDir(s.leafDir(hash))
		for _, de := range ents {
			if strings.HasPrefix(de.Name(), prefix) {
				os.Remove(filepath.Join(s.leafDir(hash), de.Name()))
			}
		}
	}
}

// Walk calls f with the key and metadata of every stored object; f
// returns true to delete it. It reads every header: for invalidations,
// not for the request path. It waits for the start-up scan.
func (s *Store) Walk(f func(key string, meta []byte) (del bool)) {
	<-s.scanDone
	s.mu.Lock()
	its := make([]item, 0, len(s.idx))
	for _, it := range s.idx {
		its = append(its, item{hash: it.hash, seq: it.seq})
	}
	s.mu.Unlock()
	for _, it := range its {
		p := s.path(it.hash, it.seq)
		fh, err := os.Open(p)
		if err != nil {
			continue
		}
		st, err := fh.Stat()
		var h Header
		if err == nil {
			h, err = ReadHeader(fh, st.Size())
		}
		fh.Close()
		if err != nil {
			continue
		}
		if f(h.Key, h.Meta) {
			s.drop(it.hash, it.seq)
		}
	}
}

// SetSize changes the tier's limit, evicting down to it.
func (s *Store) SetSize(n int64) {
	if n <= 0 {
		return
	}
	s.mu.Lock()
	s.size = n
	s.evict()
	s.mu.Unlock()
}

// Degraded says why the tier takes no new objects, or "".
func (s *Store) Degraded() string {
	at := s.failedAt.Load()
	if at == 0 || s.now().Sub(time.Unix(0, at)) > retryAfter {
		return ""
	}
	if p := s.lastErr.Load(); p != nil {
		return *p
	}
	return "write error"
}

// Writable is false while the tier is degraded by a recent write error.
func (s *Store) Writable() bool { return s.Degraded() == "" }

func (s *Store) writeFailed(err error) {
	s.writeErrors.Add(1)
	msg := err.Error()
	s.lastErr.Store(&msg)
	if s.failedAt.Swap(s.now().UnixNano()) == 0 || !s.Writable() {
		s.log.Warn("disk cache write failed; serving from memory and the origin", "error", err)
	}
}

// Dropped counts an object the caller chose not to write.
func (s *Store) Dropped() { s.dropped.Add(1) }

// Stats reports the tier's accounting.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	st := Stats{Path: s.dir, Capacity: s.size, Bytes: s.bytes, Entries: len(s.idx)}
	s.mu.Unlock()
	st.Evictions, st.Corrupt = s.evictions.Load(), s.corrupt.Load()
	st.WriteErrors, st.Dropped = s.writeErrors.Load(), s.dropped.Load()
	st.Degraded = s.Degraded()
	return st
}

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

// Writer writes one object: its body is appended with Write, readable
// while it grows with ReadAt, and becomes visible under its key only on
// Commit. A writer is used by one goroutine; ReadAt may be called from
// others.
type Writer struct {
	s        *Store
	f        *os.File
	tmp      string
	key      string
	meta     []byte
	hash     uint64
	seq      uint64
	off      int64 // body offset
	n        int64
	crc      uint32
	expires  int64
	reserved int64
	done     bool
}

// Create starts an object of sizeHint body bytes (-1: unknown), room for
// which is made at once by evicting. It fails while the tier is degraded.
func (s *Store) Create(key string, meta []byte, expires time.Time, sizeHint int64) (*Writer, error) {
	if d := s.Degraded(); d != "" {
		s.dropped.Add(1)
		return nil, fmt.Errorf("disk cache degraded: %s", d)
	}
	if len(key) > maxKey || len(meta) > maxMeta {
		return nil, fmt.Errorf("disk cache: key or metadata too large")
	}
	w := &Writer{s: s, key: key, meta: meta, hash: keyHash(key), seq: s.seq.Add(1)}
	if !expires.IsZero() {
		w.expires = expires.Unix()
	}
	w.tmp = filepath.Join(s.dir, "tmp", strconv.FormatUint(w.seq, 16))
	f, err := os.OpenFile(w.tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		s.writeFailed(err)
		return nil, fmt.Errorf("disk cache: %w", err)
	}
	w.f = f
	hdr := encodeHeader(key, meta, 0, w.expires, 0)
	w.off = int64(len(hdr))
	if _, err := f.Write(hdr); err != nil {
		w.fail(err)
		f.Close()
		return nil, fmt.Errorf("disk cache: %w", err)
	}
	if sizeHint > 0 {
		w.reserve(blocks(w.off + sizeHint))
	}
	return w, nil
}

// reserve accounts n more bytes for w; a negative n is a growth step of
// at least -n bytes. s.mu is not held.
func (w *Writer) reserve(n int64) {
	s := w.s
	s.mu.Lock()
	if n < 0 {
		n = max(-n, min(1<<20, s.size/64))
	}
	s.reserved += n
	w.reserved += n
	s.evict()
	s.mu.Unlock()
}

func (w *Writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, errors.New("disk cache: write after commit or abort")
	}
	n, err := w.f.Write(p)
	w.crc = crc32.Update(w.crc, castagnoli, p[:n])
	w.n += int64(n)
	if err != nil {
		w.fail(err)
		return n, fmt.Errorf("disk cache: %w", err)
	}
	if over := blocks(w.off+w.n) - w.reserved; over > 0 {
		// Unknown or exceeded length: account as it grows, in steps of
		// 1 MiB (less in a small store).
		w.reserve(-over)
	}
	return n, nil
}

// CopyBody writes n bytes of src, an object body whose checksum is crc,
// as w's whole body: what a refresh of the metadata (a 304) needs. The
// kernel copies it (copy_file_range: the bytes never pass through user
// space, and a file system that shares extents copies none), and the
// checksum is taken over, not computed again.
func (w *Writer) CopyBody(src *os.File, n int64, crc uint32) error {
	if w.done || w.n != 0 {
		return errors.New("disk cache: body copied into a started or finished object")
	}
	m, err := w.f.ReadFrom(io.LimitReader(src, n))
	w.n += m
	if err != nil {
		w.fail(err)
		return fmt.Errorf("disk cache: %w", err)
	}
	if m < n {
		// The source is short (damaged): not this disk's failure.
		w.Abort()
		return fmt.Errorf("disk cache: copied %d of %d bytes: %w", m, n, io.ErrUnexpectedEOF)
	}
	w.crc = crc
	if over := blocks(w.off+w.n) - w.reserved; over > 0 {
		w.reserve(-over)
	}
	return nil
}

// ReadAt reads the body written so far.
func (w *Writer) ReadAt(p []byte, off int64) (int, error) {
	return w.f.ReadAt(p, w.off+off)
}

// OpenReader opens the object being written once more, positioned at
// off in its body, with a file offset of its own: what a reader of the
// growing object hands to sendfile. It is a new open of the same inode
// (through /proc/self/fd), so that it stays valid across Commit's rename
// and Abort's unlink. The caller closes it; only bytes already written
// may be read from it.
func (w *Writer) OpenReader(off int64) (*os.File, error) {
	raw, err := w.f.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("disk cache: reopen %s: %w", w.tmp, err)
	}
	var fd uintptr
	if err := raw.Control(func(d uintptr) { fd = d }); err != nil {
		return nil, fmt.Errorf("disk cache: reopen %s: %w", w.tmp, err)
	}
	f, err := os.Open("/proc/self/fd/" + strconv.FormatUint(uint64(fd), 10))
	if err != nil {
		return nil, fmt.Errorf("disk cache: reopen %s: %w", w.tmp, err)
	}
	if _, err := f.Seek(w.off+off, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("disk cache: reopen %s: %w", w.tmp, err)
	}
	return f, nil
}

// Len is the body length written so far.
func (w *Writer) Len() int64 { return w.n }

// Commit completes the object and makes it the one stored under its key.
// Its file stays readable through ReadAt until Close.
func (w *Writer) Commit() (*Object, error) {
	if w.done {
		return nil, errors.New("disk cache: commit after commit or abort")
	}
	hdr := encodeHeader(w.key, w.meta, w.n, w.expires, w.crc)
	if _, err := w.f.WriteAt(hdr[:headerSize], 0); err != nil {
		w.fail(err)
		return nil, fmt.Errorf("disk cache: %w", err)
	}
	s := w.s
	p := s.path(w.hash, w.seq)
	err := os.Rename(w.tmp, p)
	if errors.Is(err, fs.ErrNotExist) {
		if err = os.MkdirAll(filepath.Dir(p), 0o755); err == nil {
			err = os.Rename(w.tmp, p)
		}
	}
	if err != nil {
		w.fail(err)
		return nil, fmt.Errorf("disk cache: %w", err)
	}
	w.done = true
	it := &item{hash: w.hash, seq: w.seq, size: blocks(w.off + w.n), expires: w.expires, verified: true}
	s.mu.Lock()
	s.reserved -= w.reserved
	w.reserved = 0
	old := s.idx[w.hash]
	if old != nil {
		s.unlink(old)
	}
	s.link(it)
	s.evict()
	s.mu.Unlock()
	if old != nil {
		os.Remove(s.path(old.hash, old.seq))
	}
	h := Header{Key: w.key, Meta: w.meta, BodyLen: w.n, Expires: w.expires, BodyCRC: w.crc, BodyOff: w.off}
	return &Object{Header: h, hash: w.hash, seq: w.seq}, nil
}

// Abort discards the object.
func (w *Writer) Abort() {
	if w.done {
		return
	}
	w.done = true
	os.Remove(w.tmp)
	w.release()
}

// Close releases the file; call it after Commit or Abort once no reader
// needs ReadAt.
func (w *Writer) Close() error {
	if !w.done {
		w.Abort()
	}
	return w.f.Close()
}

func (w *Writer) fail(err error) {
	w.s.writeFailed(err)
	w.done = true
	os.Remove(w.tmp)
	w.release()
}

func (w *Writer) release() {
	s := w.s
	s.mu.Lock()
	s.reserved -= w.reserved
	w.reserved = 0
	s.mu.Unlock()
}
