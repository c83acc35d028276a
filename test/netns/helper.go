package netns

import (
	"fmt"
	"os"
	"testing"
)

// helperEnv names the helper a re-executed test binary must run.
const helperEnv = "INTERCLOUD_NETNS_HELPER"

var helpers = map[string]func(args []string) int{}

// RegisterHelper declares a function the test binary can run as a separate
// process inside a namespace (StartHelper). Call it from init; fn gets the
// arguments given to StartHelper and returns the exit status. It should
// stop cleanly on SIGTERM.
func RegisterHelper(name string, fn func(args []string) int) {
	if _, dup := helpers[name]; dup {
		panic("netns: duplicate helper " + name)
	}
	helpers[name] = fn
}

// Main is TestMain for packages that use helpers:
//
//	func TestMain(m *testing.M) { netns.Main(m) }
//
// In a re-executed binary it runs the requested helper instead of the tests.
func Main(m *testing.M) {
	if name := os.Getenv(helperEnv); name != "" {
		fn, ok := helpers[name]
		if !ok {
			fmt.Fprintf(os.Stderr, "netns: unknown helper %q\n", name)
			os.Exit(2)
		}
		os.Exit(fn(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// StartHelper re-executes the test binary inside the namespace running the
// helper registered under name. The package's TestMain must call Main.
func (n *Namespace) StartHelper(name string, args ...string) *Proc {
	n.h.t.Helper()
	if _, ok := helpers[name]; !ok {
		n.fatalf("helper %q is not registered", name)
	}
	exe, err := os.Executable()
	if err != nil {
		n.fatalf("test binary: %v", err)
	}
	return n.StartEnv([]string{helperEnv + "=" + name}, exe, args...)
}
