// Package accesslog is a buffered access-log sink: requests append their
// line to a memory buffer and return; one writer goroutine owns the file
// and writes whole buffers when one fills up or the flush interval ends,
// as nginx's `access_log path buffer=64k flush=1s` does. A request never
// waits for the disk: when the buffer is full and the writer is still
// busy with the previous one, the line is dropped and counted instead.
package accesslog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Paths that name the process's own streams rather than a file.
const (
	Stderr = "stderr"
	Stdout = "stdout"
)

// Options configure a Log. Zero values are not defaults: the caller's
// config rendering fills them.
type Options struct {
	// Path is a file, opened for appending (created 0640), or Stderr or
	// Stdout.
	Path   string
	Format Format
	// Buffer is the size of one buffer in bytes; a line longer than that
	// is written on its own.
	Buffer int
	// Flush is the longest a line waits in the buffer.
	Flush time.Duration
	// Sample is the share of requests logged, in (0, 1]: 0.1 logs one
	// request in ten, exactly, in arrival order.
	Sample float64
	// Written and Dropped count lines; either may be nil.
	Written, Dropped prometheus.Counter
	// Errors gets write errors (once per run of failures); nil discards.
	Errors *slog.Logger
}

// Log is one open sink. A nil *Log logs nothing.
type Log struct {
	o    Options
	w    io.Writer
	file *os.File // nil for stderr/stdout

	seen atomic.Uint64 // requests offered, for sampling

	mu     sync.Mutex
	cur    []byte
	lines  int
	closed bool

	full    chan batch  // a filled buffer for the writer
	free    chan []byte // buffers the writer is done with
	flushed chan chan struct{}
	done    chan struct{}
	exited  chan struct{}
	scratch sync.Pool
}

// queued is how many full buffers may wait for the writer: a burst that
// fills buffers faster than one write takes is absorbed, and memory stays
// bounded at (queued+2) buffers.
const queued = 8

type batch struct {
	b     []byte
	lines int
}

// Open opens the sink's file and starts its writer.
func Open(o Options) (*Log, error) {
	switch {
	case o.Path == "":
		return nil, errors.New("access log: no path")
	case o.Buffer <= 0 || o.Flush <= 0:
		return nil, fmt.Errorf("access log %s: buffer %d and flush %v must be positive", o.Path, o.Buffer, o.Flush)
	case !(o.Sample > 0 && o.Sample <= 1):
		return nil, fmt.Errorf("access log %s: sample %v is not in (0, 1]", o.Path, o.Sample)
	}
	var w io.Writer
	var file *os.File
	switch o.Path {
	case Stderr:
		w = os.Stderr
	case Stdout:
		w = os.Stdout
	default:
		f, err := os.OpenFile(o.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return nil, fmt.Errorf("access log: %w", err)
		}
		w, file = f, f
	}
	return start(o, w, file), nil
}

// start runs a Log on w; file, when set, is closed by Close.
func start(o Options, w io.Writer, file *os.File) *Log {
	l := &Log{
		o:       o,
		w:       w,
		file:    file,
		cur:     make([]byte, 0, o.Buffer),
		full:    make(chan batch, queued),
		free:    make(chan []byte, queued),
		flushed: make(chan chan struct{}),
		done:    make(chan struct{}),
		exited:  make(chan struct{}),
	}
	l.scratch.New = func() any { b := make([]byte, 0, 512); return &b }
	go l.writer()
	return l
}

// Log appends e's line to the buffer, unless sampling skips it. It never
// waits for the disk.
func (l *Log) Log(e *Entry) {
	if l == nil {
		return
	}
	if l.o.Sample < 1 {
		// Exactly Sample of the requests, spread evenly: request n is
		// logged when it moves floor(n*Sample) on.
		n := l.seen.Add(1)
		if uint64(float64(n)*l.o.Sample) == uint64(float64(n-1)*l.o.Sample) {
			return
		}
	}
	sp := l.scratch.Get().(*[]byte)
	line := appendLine((*sp)[:0], l.o.Format, e)
	l.append(line)
	*sp = line
	l.scratch.Put(sp)
}

func (l *Log) append(line []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		l.drop(1)
		return
	}
	if len(l.cur)+len(line) > cap(l.cur) && len(l.cur) > 0 {
		if !l.handOff() {
			l.drop(1)
			return
		}
	}
	if len(line) > cap(l.cur) {
		// Longer than a buffer: it goes alone, copied (line is scratch).
		select {
		case l.full <- batch{b: append([]byte(nil), line...), lines: 1}:
		default:
			l.drop(1)
		}
		return
	}
	l.cur = append(l.cur, line...)
	l.lines++
}

// handOff gives the current buffer to the writer if it can take one now;
// l.mu is held.
func (l *Log) handOff() bool {
	select {
	case l.full <- batch{b: l.cur, lines: l.lines}:
	default:
		return false
	}
	l.cur, l.lines = l.spare(), 0
	return true
}

func (l *Log) spare() []byte {
	select {
	case b := <-l.free:
		return b[:0]
	default:
		return make([]byte, 0, l.o.Buffer)
	}
}

// take removes what the buffer holds, for the writer.
func (l *Log) take() batch {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lines == 0 {
		return batch{}
	}
	b := batch{b: l.cur, lines: l.lines}
	l.cur, l.lines = l.spare(), 0
	return b
}

func (l *Log) drop(n int) {
	if l.o.Dropped != nil {
		l.o.Dropped.Add(float64(n))
	}
}

// writer is the only goroutine that touches the file.
func (l *Log) writer() {
	defer close(l.exited)
	t := time.NewTicker(l.o.Flush)
	defer t.Stop()
	failing := false
	write := func(b batch) {
		if b.lines == 0 {
			return
		}
		_, err := l.w.Write(b.b)
		switch {
		case err != nil:
			l.drop(b.lines)
			if !failing && l.o.Errors != nil {
				l.o.Errors.Error("access log: write failed; dropping lines until it works again", "path", l.o.Path, "err", err)
			}
			failing = true
		default:
			failing = false
			if l.o.Written != nil {
				l.o.Written.Add(float64(b.lines))
			}
		}
		if cap(b.b) == l.o.Buffer {
			select {
			case l.free <- b.b:
			default:
			}
		}
	}
	for {
		select {
		case b := <-l.full:
			write(b)
		case <-t.C:
			write(l.take())
		case ack := <-l.flushed:
			l.drain(write)
			close(ack)
		case <-l.done:
			l.drain(write)
			return
		}
	}
}

func (l *Log) drain(write func(batch)) {
	for {
		select {
		case b := <-l.full:
			write(b)
			continue
		default:
		}
		break
	}
	write(l.take())
}

// Flush writes what is buffered now and returns once it is written (or
// ctx ends).
func (l *Log) Flush(ctx context.Context) error {
	if l == nil {
		return nil
	}
	ack := make(chan struct{})
	select {
	case l.flushed <- ack:
	case <-l.exited:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-ack:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close writes what is buffered and closes the file (not stderr or
// stdout). Lines logged after Close are dropped and counted.
// Current reports whether the log's path still names the file it
// writes: false once the file was renamed or removed (as logrotate does)
// or the path cannot be read. Stderr and stdout are always current.
func (l *Log) Current() bool {
	if l == nil || l.file == nil {
		return true
	}
	open, err := l.file.Stat()
	if err != nil {
		return false
	}
	named, err := os.Stat(l.o.Path)
	return err == nil && os.SameFile(open, named)
}

func (l *Log) Close(ctx context.Context) error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	close(l.done)
	select {
	case <-l.exited:
	case <-ctx.Done():
		// The writer is stuck on a slow disk: the file is closed when it
		// is done with it, not leaked.
		if l.file != nil {
			go func() {
				<-l.exited
				l.file.Close()
			}()
		}
		return fmt.Errorf("access log %s: %w", l.o.Path, ctx.Err())
	}
	if l.file != nil {
		if err := l.file.Close(); err != nil {
			return fmt.Errorf("access log: %w", err)
		}
	}
	return nil
}
