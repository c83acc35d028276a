package edge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/intercloud/intercloud/edge/disk"
)

// streamMin is the smallest body a fill streams to its clients while it
// arrives; smaller ones are read whole first, as one read usually holds
// them anyway.
const streamMin = 256 << 10

// growing is the body of an object being filled: the origin's bytes are
// appended by one goroutine (run) while any number of clients read what
// has arrived and wait for more. It is backed by memory (a body of known
// length small enough for the memory tier) or by the disk tier's file.
type growing struct {
	mem []byte       // memory backing, of the announced length
	w   *disk.Writer // file backing

	mu    sync.Mutex
	n     int64         // bytes available
	wake  chan struct{} // closed on progress
	done  bool
	err   error
	final *entry // the complete entry, once done without error
	refs  int    // users of w: run and the readers
	// unpublish takes the fill out of the edge's running fills; it runs
	// before the fill is marked done, so that no request finds a fill
	// that is over (and fetches again in a loop).
	unpublish func()
}

func newGrowing(mem []byte, w *disk.Writer) *growing {
	return &growing{mem: mem, w: w, wake: make(chan struct{}), refs: 1}
}

// errCut is a fill that ended short: origin gone, length not met, chunk
// cut. Its clients get a cut connection, never a complete-looking body.
var errCut = errors.New("origin body ended short")

// errGrowRead is a failed read of a growing object's file.
var errGrowRead = errors.New("read growing object")

// errDiskWrite stops a fill whose disk file could not be written (a full
// or failing disk): its clients fetch the rest from the origin.
var errDiskWrite = errors.New("disk tier write failed")

func (g *growing) advance(k int64) {
	g.mu.Lock()
	g.n += k
	close(g.wake)
	g.wake = make(chan struct{})
	g.mu.Unlock()
}

func (g *growing) finish(final *entry, err error) {
	if g.unpublish != nil {
		g.unpublish()
	}
	g.mu.Lock()
	g.done, g.final, g.err = true, final, err
	close(g.wake)
	g.mu.Unlock()
	g.release()
}

// acquire registers a reader of the file; false when the fill is over
// and its file closed (the reader then serves the final entry).
func (g *growing) acquire() bool {
	if g.w == nil {
		return true
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.refs == 0 {
		return false
	}
	g.refs++
	return true
}

func (g *growing) release() {
	if g.w == nil {
		return
	}
	g.mu.Lock()
	g.refs--
	last := g.refs == 0
	g.mu.Unlock()
	if last {
		g.w.Close()
	}
}

// wait blocks until the fill is over.
func (g *growing) wait(ctx context.Context) (*entry, error) {
	for {
		g.mu.Lock()
		done, final, err, wake := g.done, g.final, g.err, g.wake
		g.mu.Unlock()
		if done {
			return final, err
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// A reader of a growing object sends at most firstTurn bytes, then at
// most turn bytes at a time, before it lets the other goroutines run.
// The clients of a fill all wake when its first bytes arrive, and a fast
// origin is soon megabytes ahead of them: a reader that sent all that is
// there at once kept the others from sending their first byte (with 100
// clients on two cores the last one waited for 99 copies of a
// megabyte). In turns, every client gets its first bytes at once and
// then an even share.
const (
	firstTurn = 32 << 10
	turn      = 64 << 10
)

// copyTo writes body bytes [off, off+n) to w as they arrive (n < 0: to
// the end), waiting for the origin as needed, and returns how many it
// wrote. flush sends what w buffers; it runs before every wait, so that
// the header and the first bytes never sit in a buffer while the origin
// is slow. A file-backed body of known length goes out with sendfile
// when w is an io.ReaderFrom that offers it.
func (g *growing) copyTo(ctx context.Context, w io.Writer, flush func(), off, n int64) (int64, error) {
	var written int64
	var buf []byte
	var file *os.File
	rf, _ := w.(io.ReaderFrom)
	if g.w != nil && rf != nil && n >= 0 {
		// Without a declared length the server chunks the body and
		// copies it anyway: pread and write then.
		if f, err := g.w.OpenReader(off); err == nil {
			file = f
			defer f.Close()
		}
	}
	if g.mem == nil && file == nil {
		bp := copyBufs.Get().(*[]byte)
		defer copyBufs.Put(bp)
		buf = *bp
	}
	first := true
	for n != 0 {
		g.mu.Lock()
		avail, done, err, wake := g.n, g.done, g.err, g.wake
		g.mu.Unlock()
		if off < avail {
			k := avail - off
			if n > 0 {
				k = min(k, n)
			}
			if first {
				k = min(k, firstTurn)
			} else {
				k = min(k, turn)
			}
			switch {
			case g.mem != nil:
				if _, err := w.Write(g.mem[off : off+k]); err != nil {
					return written, err
				}
			case file != nil:
				m, err := rf.ReadFrom(&io.LimitedReader{R: file, N: k})
				if err != nil {
					return written + m, err
				}
				if m < k {
					return written + m, fmt.Errorf("%w: %d of %d bytes at %d", errGrowRead, m, k, off)
				}
			default:
				k = min(k, int64(len(buf)))
				m, err := g.w.ReadAt(buf[:k], off)
				if int64(m) < k {
					return written, fmt.Errorf("%w: %v", errGrowRead, err)
				}
				if _, err := w.Write(buf[:k]); err != nil {
					return written, err
				}
			}
			written += k
			off += k
			if n > 0 {
				n -= k
			}
			first = false
			// The other readers of the fill take their turn.
			runtime.Gosched()
			continue
		}
		if done {
			if err != nil {
				return written, err
			}
			if n > 0 {
				return written, errCut
			}
			return written, nil
		}
		flush()
		select {
		case <-wake:
		case <-ctx.Done():
			return written, ctx.Err()
		}
	}
	return written, nil
}

// diskOnlyAbove: with a writable disk tier, bodies larger than this are
// kept on disk only and sent from their file with sendfile: the kernel's
// page cache is their memory tier, as for nginx, and the heap holds
// small hot objects.
const diskOnlyAbove = 1 << 20

// memMax is the largest body the memory tier keeps.
func (e *Edge) memMax() int64 {
	m := e.maxObject.Load()
	if d := e.tier.disk.Load(); d != nil && d.s.Writable() {
		m = min(m, diskOnlyAbove)
	}
	return m
}

// streamFill is how a storable response of length clen is filled:
// in memory while it streams, into a disk file while it streams, or (nil,
// nil) read whole first as before.
func (e *Edge) streamFill(clen int64) (mem bool, d *diskTier) {
	memMax := e.memMax()
	if clen > streamMin && clen <= memMax {
		return true, nil
	}
	if d = e.tier.disk.Load(); d != nil && d.s.Writable() && (clen < 0 || clen > memMax) && clen <= int64(d.cfg.Size) {
		return false, d
	}
	return false, nil
}

// maxStored is the largest body the edge stores now.
func (e *Edge) maxStored() int64 {
	if d := e.tier.disk.Load(); d != nil && d.s.Writable() {
		return max(int64(d.cfg.Size), e.maxObject.Load())
	}
	return e.maxObject.Load()
}

// startGrowing turns res into a streaming fill of ent from resp: ent is
// placed under its key (its vary marker stored), the body is read by a
// goroutine of its own, and the result is published under fk for
// requests that arrive while it runs. ent is stored when the body is
// whole; a short one is dropped.
func (e *Edge) startGrowing(x *exchange, res *fillResult, resp *http.Response, ent *entry, mem bool, d *diskTier, fk string, gen uint64, idle *time.Timer) *fillResult {
	ok, vk := e.placeEntry(x, ent)
	dels := e.tier.delGen(ent.key)
	ttl := ent.retention(e.keepValidated)
	var g *growing
	switch {
	case !ok:
		// The marker was refused: stream to the clients, store nothing.
		gen = ^gen
		g = newGrowing(nil, nil)
		if mem {
			g.mem = make([]byte, resp.ContentLength)
		}
	case mem:
		g = newGrowing(make([]byte, resp.ContentLength), nil)
	default:
		meta, err := e.tier.encode(ent)
		var w *disk.Writer
		if err == nil {
			w, err = d.s.Create(ent.key, meta, e.now().Add(ttl), resp.ContentLength)
		}
		if err != nil {
			// The disk refused (full, unwritable): the old way, through
			// memory when the object fits.
			return nil
		}
		g = newGrowing(nil, w)
	}
	if g.mem == nil && g.w == nil {
		return nil
	}
	res.entry, res.growing, res.shareable, res.varyKey, res.stored = ent, g, true, vk, ok
	if res.own != nil {
		// The leader's own copy streams from the same body.
		res.own.size, res.own.clen = ent.size, ent.clen
	}
	if _, running := e.filling.LoadOrStore(fk, res); !running {
		g.unpublish = func() { e.filling.CompareAndDelete(fk, res) }
	}
	e.bg.Add(1)
	go func() {
		defer e.bg.Done()
		e.runGrowing(g, resp, ent, ttl, d, gen, dels, idle)
	}()
	return res
}

// runGrowing reads the origin's body into g and stores the entry when it
// is whole.
func (e *Edge) runGrowing(g *growing, resp *http.Response, ent *entry, ttl time.Duration, d *diskTier, gen, dels uint64, idle *time.Timer) {
	defer resp.Body.Close()
	var total int64
	var err error
	var buf []byte
	if g.mem == nil {
		buf = make([]byte, 64<<10)
	}
	for {
		var m int
		var rerr error
		switch {
		case g.mem != nil && total == int64(len(g.mem)):
			// All announced bytes are in: the next read must say EOF.
			var one [1]byte
			if m, rerr = resp.Body.Read(one[:]); m > 0 {
				rerr, m = errors.New("origin body longer than its Content-Length"), 0
			}
		case g.mem != nil:
			m, rerr = resp.Body.Read(g.mem[total:])
		default:
			if m, rerr = resp.Body.Read(buf); m > 0 {
				if total+int64(m) > int64(d.cfg.Size) {
					// A body of unknown length outgrew the tier: its
					// clients get the rest from the origin.
					rerr, m = fmt.Errorf("%w: body larger than the tier's %d bytes", errDiskWrite, d.cfg.Size), 0
				} else if _, werr := g.w.Write(buf[:m]); werr != nil {
					rerr = fmt.Errorf("%w: %v", errDiskWrite, werr)
					m = 0
				}
			}
		}
		if m > 0 {
			total += int64(m)
			g.advance(int64(m))
			idle.Reset(fillTimeout)
			// A fast origin never makes this loop wait, so it would keep
			// its P for a whole time slice (10 ms) while the requests and
			// readers it woke queue behind it: it takes turns with them.
			runtime.Gosched()
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			err = rerr
			break
		}
	}
	if err == nil && resp.ContentLength >= 0 && total != resp.ContentLength {
		err = fmt.Errorf("%d of %d bytes", total, resp.ContentLength)
	}
	if err != nil {
		if g.w != nil {
			g.w.Abort()
		}
		e.log.Warn("streaming fill failed; not stored", "key", ent.key, "bytes", total, "error", err)
		if !errors.Is(err, errDiskWrite) {
			err = fmt.Errorf("%w: %v", errCut, err)
		}
		g.finish(nil, err)
		return
	}
	fe := *ent
	fe.size, fe.clen = total, []string{strconv.FormatInt(total, 10)}
	fe.gz, fe.hits = &gzipped{}, &hitLines{}
	stored := gen == e.purgeGen.Load()
	switch {
	case g.mem != nil:
		fe.body = g.mem
		if stored {
			e.store.Set(&fe, ttl)
		}
	case stored:
		o, cerr := e.tier.commit(g.w, ent.key, dels)
		if cerr != nil {
			// Kept for the clients already reading, not stored.
			stored = false
			break
		}
		fe.disk = &diskRef{d: d, o: o}
		e.tier.setMem(&fe, ttl)
	default:
		g.w.Abort()
	}
	if fe.body == nil && fe.disk == nil {
		// Nothing later clients could read: they fetch again.
		g.finish(nil, nil)
		return
	}
	g.finish(&fe, nil)
}

// resume sends the client the rest of ent's body, [off, off+n) (n < 0:
// to the end), fetched from the origin with a Range request guarded by
// If-Range: what a client of a fill that lost its disk file still needs.
func (x *exchange) resume(ent *entry, off, n int64) error {
	h := x.forwarded().Clone()
	rng := "bytes=" + strconv.FormatInt(off, 10) + "-"
	if n >= 0 {
		rng += strconv.FormatInt(off+n-1, 10)
	}
	h.Set("Range", rng)
	if v := ent.validators; v.ETag != "" && !strings.HasPrefix(v.ETag, "W/") {
		h.Set("If-Range", v.ETag)
	} else if lm := ent.header.Get("Last-Modified"); lm != "" {
		h.Set("If-Range", lm)
	} else {
		return errors.New("no validator to resume with")
	}
	resp, _, err := x.e.roundTrip(x.r.Context(), x, http.MethodGet, h, revalidation{}, http.NoBody, 0)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent || !strings.HasPrefix(resp.Header.Get("Content-Range"), "bytes "+strconv.FormatInt(off, 10)+"-") {
		return fmt.Errorf("origin answered the resumed range with %d %q", resp.StatusCode, resp.Header.Get("Content-Range"))
	}
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	got, err := io.CopyBuffer(writerOnly{x.w}, resp.Body, *bp)
	if err == nil && n >= 0 && got != n {
		err = fmt.Errorf("resumed %d of %d bytes", got, n)
	}
	return err
}
