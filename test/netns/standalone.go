package netns

import (
	"fmt"
	"io"
	"os"
	"sync"
	"testing"
)

// Standalone returns a harness for a program rather than a test (the
// multi-cloud demo), the testing.TB it reports to (for helpers that take
// one), and the function that removes everything it made; call it on every
// way out. Messages go to log. A failure of a harness method
// panics with a *Failure after marking the run failed: the program recovers
// it on its main goroutine, calls the cleanup and exits. Should the program
// die without cleaning up, its namespaces and processes still go with it
// (holders and daemons carry Pdeathsig), and the next run sweeps leftovers.
// A missing prerequisite is a failure here, never a skip.
func Standalone(name string, log io.Writer) (*Harness, testing.TB, func()) {
	tb := &programTB{name: name, log: log}
	h := New(tb)
	return h, tb, tb.cleanup
}

// Failure is what a harness method panics with in a standalone harness.
type Failure struct{ Msg string }

func (f *Failure) Error() string { return f.Msg }

// programTB is the part of testing.TB the harness and testenv use, for a
// program. The embedded interface is nil: a method not implemented below
// would panic, and none of them is used.
type programTB struct {
	testing.TB
	name string
	log  io.Writer

	mu       sync.Mutex
	cleanups []func()
	failed   bool
	done     bool
}

func (p *programTB) Name() string { return p.name }
func (p *programTB) Helper()      {}

func (p *programTB) Logf(format string, args ...any) {
	fmt.Fprintf(p.log, format+"\n", args...)
}
func (p *programTB) Log(args ...any) { fmt.Fprintln(p.log, args...) }

func (p *programTB) Fail() {
	p.mu.Lock()
	p.failed = true
	p.mu.Unlock()
}

func (p *programTB) Failed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.failed
}

func (p *programTB) Errorf(format string, args ...any) {
	p.Logf(format, args...)
	p.Fail()
}
func (p *programTB) Error(args ...any) { p.Log(args...); p.Fail() }

func (p *programTB) FailNow() {
	p.Fail()
	panic(&Failure{Msg: "failed"})
}

func (p *programTB) Fatalf(format string, args ...any) {
	p.Fail()
	panic(&Failure{Msg: fmt.Sprintf(format, args...)})
}
func (p *programTB) Fatal(args ...any) {
	p.Fail()
	panic(&Failure{Msg: fmt.Sprint(args...)})
}

// A program has no skipping: what a test would skip for is missing.
func (p *programTB) Skipf(format string, args ...any) { p.Fatalf(format, args...) }
func (p *programTB) Skip(args ...any)                 { p.Fatal(args...) }
func (p *programTB) SkipNow()                         { p.Fatal("skipped") }
func (p *programTB) Skipped() bool                    { return false }

func (p *programTB) Cleanup(fn func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cleanups = append(p.cleanups, fn)
}

func (p *programTB) TempDir() string {
	d, err := os.MkdirTemp("", "intercloud-"+p.name+"-")
	if err != nil {
		p.Fatalf("temp dir: %v", err)
	}
	p.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// cleanup runs the registered functions last first, once.
func (p *programTB) cleanup() {
	p.mu.Lock()
	if p.done {
		p.mu.Unlock()
		return
	}
	p.done = true
	fns := p.cleanups
	p.cleanups = nil
	p.mu.Unlock()
	for i := len(fns) - 1; i >= 0; i-- {
		func() {
			defer func() {
				if r := recover(); r != nil {
					fmt.Fprintf(p.log, "cleanup: %v\n", r)
				}
			}()
			fns[i]()
		}()
	}
}
