// Command demo builds the multi-cloud topology of examples/multicloud in
// network namespaces, runs its story step by step with an explanation of
// each step and commands to look for yourself, and leaves everything up
// until Ctrl-C, then removes it. It needs root.
//
//	sudo make demo
//	sudo go run ./test/multicloud/demo [-bin bin/intercloud] [-auto]
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/intercloud/intercloud/test/multicloud"
	"github.com/intercloud/intercloud/test/netns"
)

func main() {
	bin := flag.String("bin", "", "the intercloud binary (default: build one into a temporary directory)")
	auto := flag.Bool("auto", false, "run every step without waiting for Enter")
	ui := flag.String("ui", "127.0.0.1:9177", "loopback address on this host forwarded to the controller's API and /ui page (empty: none)")
	flag.Parse()
	if err := run(*bin, *auto, *ui); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(bin string, auto bool, ui string) (err error) {
	if os.Geteuid() != 0 {
		return errors.New("network namespaces need root: run it as root (sudo make demo)")
	}
	repo, err := repoRoot()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()

	// Harness methods report failures by panicking with *netns.Failure; the
	// cleanup below runs on every way out.
	var cleanup func()
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(*netns.Failure)
			if !ok {
				if cleanup != nil {
					cleanup()
				}
				panic(r)
			}
			err = errors.New(f.Msg)
		}
		if cleanup != nil {
			fmt.Println("\nRemoving every namespace, link and process of the demo…")
			cleanup()
			fmt.Println("Done.")
		}
	}()
	h, tb, c := netns.Standalone("multicloud-demo", os.Stderr)
	cleanup = c

	if bin == "" {
		fmt.Println("Building intercloud…")
		if bin, err = multicloud.BuildBinary(repo, tb.TempDir()); err != nil {
			return err
		}
	} else if bin, err = filepath.Abs(bin); err != nil {
		return err
	}

	fmt.Println("Building the topology: 12 network namespaces, BIRD on-premises, the controller and 6 node agents…")
	start := time.Now()
	topo := multicloud.Build(tb, h, multicloud.Options{Binary: bin, Repo: repo})
	if err := topo.WaitAllCurrent(ctx, time.Minute); err != nil {
		return fmt.Errorf("the site did not come up: %w", err)
	}
	fmt.Printf("Up in %.1fs: every node live, healthy and on the current revision.\n\n", time.Since(start).Seconds())
	printLayout(topo)
	if ui != "" {
		addr, err := forwardUI(ctx, topo, ui)
		if err != nil {
			return err
		}
		fmt.Printf("The controller's topology page: http://%s/ui (forwarded into the control namespace).\n", addr)
	}

	in := bufio.NewReader(os.Stdin)
	interactive := !auto && isTerminal(os.Stdin)
	for i, s := range multicloud.Steps {
		if interactive {
			fmt.Printf("\nPress Enter for step %d (%s)… ", i+1, s.Title)
			if !waitEnter(ctx, in) {
				return nil
			}
		}
		fmt.Printf("\n━━ Step %d: %s\n\n", i+1, s.Title)
		fmt.Println(wrap(s.Explain, 76, "   "))
		fmt.Println()
		t0 := time.Now()
		logf := func(format string, args ...any) { fmt.Printf("   · "+format+"\n", args...) }
		if err := s.Run(ctx, topo, logf); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			fmt.Printf("   ✗ %v\n", err)
			return fmt.Errorf("step %d (%s) failed; the daemons' output is above", i+1, s.Name)
		}
		if _, err := topo.StatusWait(ctx); err != nil {
			return err
		}
		fmt.Printf("   ✓ done in %.1fs; `intercloud status --wait`: every live node runs the current revision.\n", time.Since(t0).Seconds())
		fmt.Println("\n   Look for yourself:")
		for _, l := range s.Look(topo) {
			fmt.Println("     " + l)
		}
	}
	fmt.Println("\nThe story is told. Everything stays up: paste the commands above, or any")
	fmt.Println("command after the namespace's nsenter prefix. Ctrl-C removes it all.")
	<-ctx.Done()
	return nil
}

func printLayout(t *multicloud.Topology) {
	fmt.Println("Namespaces (`ip netns exec` does not know them: they are held by a process;")
	fmt.Println("enter one with the nsenter prefix shown):")
	for _, ns := range []struct{ name, what string }{
		{multicloud.NSControl, "controller + store, 172.30.0.5 (API :9170)"},
		{multicloud.NSInet, "the internet: a bridge joining gateways, control and on-prem"},
		{"seoul-gw", "seoul's gateway: BGP, WireGuard, 10.1.0.1"},
		{"seoul-edge-1", "seoul's edge + GeoDNS, 10.1.0.10"},
		{"seoul-origin", "blue origin, 10.1.0.20:9001"},
		{"tokyo-gw", "tokyo's gateway, 10.2.0.1"},
		{"tokyo-edge-1", "tokyo's edge + GeoDNS, 10.2.0.10"},
		{"tokyo-origin", "green origin, 10.2.0.20:9002"},
		{multicloud.NSOnPrem, "on-premises BIRD 2, AS65009, 10.9.0.0/16"},
		{multicloud.NSKR, "a client in Korea, 10.1.0.100"},
		{multicloud.NSJP, "a client in Japan, 10.2.0.100"},
	} {
		fmt.Printf("  %-13s %-52s %s\n", ns.name, ns.what, t.Enter(ns.name))
	}
	fmt.Printf("\nThe daemons run in %s (config: %s).\n", t.Dir, multicloud.ExampleDir)
}

// forwardUI listens on a loopback address of this host and forwards each
// connection to the controller inside the control namespace: the dial
// happens on a thread switched into that namespace, so the host itself
// never talks to the demo's addresses.
func forwardUI(ctx context.Context, t *multicloud.Topology, addr string) (string, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("-ui %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return "", fmt.Errorf("-ui %q: must be a loopback address", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("-ui: %w", err)
	}
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	ctlAddr := strings.TrimPrefix(multicloud.ControllerURL, "http://")
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				var up net.Conn
				err := t.NS(multicloud.NSControl).Do(func() error {
					var err error
					up, err = net.DialTimeout("tcp", ctlAddr, 3*time.Second)
					return err
				})
				if err != nil {
					return
				}
				defer up.Close()
				done := make(chan struct{}, 2)
				go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
				go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
				<-done
			}()
		}
	}()
	return ln.Addr().String(), nil
}

// waitEnter waits for a line on stdin; false if ctx ends first.
func waitEnter(ctx context.Context, in *bufio.Reader) bool {
	done := make(chan struct{})
	go func() {
		_, _ = in.ReadString('\n')
		close(done)
	}()
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func wrap(s string, width int, indent string) string {
	var b strings.Builder
	line := indent
	for _, w := range strings.Fields(s) {
		if len(line)+len(w)+1 > width && strings.TrimSpace(line) != "" {
			b.WriteString(strings.TrimRight(line, " ") + "\n")
			line = indent
		}
		line += w + " "
	}
	b.WriteString(strings.TrimRight(line, " "))
	return b.String()
}

// repoRoot finds the module root from the working directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			if _, err := os.Stat(filepath.Join(dir, multicloud.ExampleDir)); err == nil {
				return dir, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run it from the intercloud repository (no go.mod with " + multicloud.ExampleDir + " above the working directory)")
		}
		dir = parent
	}
}
