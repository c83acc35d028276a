package soak

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/intercloud/intercloud/test/netns"
)

// toxiHelper is the helper process that runs a toxiproxy inside a
// namespace: `toxi LISTEN UPSTREAM`. SIGUSR1 slows the path down (latency
// and a bandwidth cap on what the upstream sends back), SIGUSR2 clears it.
// Signals rather than toxiproxy's HTTP API: the API would listen inside
// the namespace, where the test process cannot reach it.
const toxiHelper = "soak-toxiproxy"

// The slow path: added latency (ms), its jitter, and the cap (KB/s).
const (
	toxicLatency = 300
	toxicJitter  = 100
	toxicRate    = 256
)

func init() { netns.RegisterHelper(toxiHelper, runToxi) }

func runToxi(args []string) int {
	if len(args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: toxi LISTEN UPSTREAM")
		return 2
	}
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	p := toxiproxy.NewProxy(srv, "blue", args[0], args[1])
	if err := p.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "toxiproxy %s → %s: %v\n", args[0], args[1], err)
		return 1
	}
	fmt.Printf("toxiproxy %s → %s\n", args[0], args[1])
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGTERM, syscall.SIGINT)
	for s := range sig {
		switch s {
		case syscall.SIGUSR1:
			for _, t := range []string{
				fmt.Sprintf(`{"name":"slow","type":"latency","stream":"downstream","attributes":{"latency":%d,"jitter":%d}}`, toxicLatency, toxicJitter),
				fmt.Sprintf(`{"name":"cap","type":"bandwidth","stream":"downstream","attributes":{"rate":%d}}`, toxicRate),
			} {
				if _, err := p.Toxics.AddToxicJson(strings.NewReader(t)); err != nil {
					fmt.Fprintf(os.Stderr, "add toxic: %v\n", err)
				}
			}
			fmt.Println("toxics on")
		case syscall.SIGUSR2:
			p.Toxics.ResetToxics(context.Background())
			fmt.Println("toxics off")
		default:
			p.Stop()
			return 0
		}
	}
	return 0
}
