// Package netns is the network-namespace harness for integration tests: it
// makes namespaces and veth links, runs commands and long-lived processes
// inside them, and removes everything it made, even after a crash.
//
//	h := netns.New(t)
//	a, b := h.Namespace("a"), h.Namespace("b")
//	h.Veth(a, "eth0", b, "eth0")
//	a.Addr("eth0", "10.0.0.1/24")
//	b.Addr("eth0", "10.0.0.2/24")
//	out, err := a.Run(ctx, "ping", "-c1", "10.0.0.2")
//	bird := b.Start("bird", "-f", "-c", conf, "-s", sock)
//
// Each namespace is held by a holder process (sleep) cloned with
// CLONE_NEWNET, in its own process group and with Pdeathsig SIGKILL, so the
// namespace dies with the test binary. Every process the harness starts
// carries a marker in its environment naming the test process that owns it;
// New sweeps marked processes whose owner is gone (a crashed earlier run),
// which frees their namespaces and the links inside them.
//
// Processes run inside a namespace through nsenter and must not daemonize
// (run bird with -f): a daemon that forks away escapes the cleanup. Go code
// that must open sockets inside a namespace uses Do, or runs as a helper
// process (RegisterHelper, Main, StartHelper) — a whole process inside the
// namespace is the only safe way for code that opens sockets later on other
// goroutines (a BGP server, wireguard-go).
package netns
