package netns

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// command builds "nsenter --net=<ns> -- name args..." carrying the marker
// that lets Sweep find it after a crash. nsenter execs the program in place,
// so Pdeathsig and the process group stay with the program itself.
func (n *Namespace) command(ctx context.Context, env []string, name string, args ...string) *exec.Cmd {
	full := append([]string{"--net=" + n.path, "--", name}, args...)
	var cmd *exec.Cmd
	if ctx != nil {
		cmd = exec.CommandContext(ctx, "nsenter", full...)
	} else {
		cmd = exec.Command("nsenter", full...)
	}
	cmd.Env = append(append(os.Environ(), env...), markerEnv+"="+ownerMark()+":"+n.full)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if ctx != nil {
		// Kill the whole group: the program may have children of its own.
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
		cmd.WaitDelay = 2 * time.Second
	}
	return cmd
}

// Run runs a command inside the namespace and returns its combined output.
func (n *Namespace) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := n.command(ctx, nil, name, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s %v in %s: %w", name, args, n.name, err)
	}
	return out, nil
}

func (n *Namespace) runNoCtx(name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return n.Run(ctx, name, args...)
}

// MustRun runs a command inside the namespace (30 s limit) and fails the
// test if it fails; it returns the output.
func (n *Namespace) MustRun(name string, args ...string) string {
	n.h.t.Helper()
	out, err := n.runNoCtx(name, args...)
	if err != nil {
		n.fatalf("%v\n%s", err, out)
	}
	return string(out)
}

// Proc is a long-running process inside a namespace. It is stopped by
// t.Cleanup if the test does not stop it first.
type Proc struct {
	n    *Namespace
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error // valid after done

	stopOnce sync.Once
}

// Start starts a long-running program inside the namespace. Its output is
// kept (Output) and logged if the test fails.
func (n *Namespace) Start(name string, args ...string) *Proc {
	n.h.t.Helper()
	return n.StartEnv(nil, name, args...)
}

// StartEnv is Start with extra environment variables ("K=V").
func (n *Namespace) StartEnv(env []string, name string, args ...string) *Proc {
	n.h.t.Helper()
	cmd := n.command(nil, env, name, args...)
	p := &Proc{n: n, cmd: cmd, out: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		n.fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t := n.h.t
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("netns %s: output of %s:\n%s", n.name, name, tail(p.Output(), 8<<10))
		}
	})
	return p
}

// Pid is the process id (also its process group id).
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Output is everything the process wrote so far.
func (p *Proc) Output() string { return p.out.String() }

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err is the exit error, once Done is closed.
func (p *Proc) Err() error {
	<-p.done
	return p.err
}

// Signal sends sig to the process.
func (p *Proc) Signal(sig syscall.Signal) error {
	return syscall.Kill(p.cmd.Process.Pid, sig)
}

// Stop sends SIGTERM to the process group and SIGKILL after 5 s; it waits
// for the exit. Calling it again does nothing.
func (p *Proc) Stop() {
	p.stopOnce.Do(func() {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
		waitTimeout(p.cmd, p.done, 5*time.Second)
	})
}

// Kill kills the process group at once (a crash) and waits for the exit.
func (p *Proc) Kill() {
	p.stopOnce.Do(func() {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	})
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
