package paths_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/edge"
	"github.com/intercloud/intercloud/role"
	"github.com/intercloud/intercloud/test/netns"
)

func init() {
	netns.RegisterHelper("paths-edge", runEdge)
	netns.RegisterHelper("paths-toxiproxy", runToxiproxy)
}

// runEdge runs one edge role inside its namespace (args: node, snapshot
// file, admin address) until SIGTERM: every socket it opens, the
// listener and its fetches alike, is the namespace's.
func runEdge(args []string) int {
	node, file, admin := args[0], args[1], args[2]
	b, err := os.ReadFile(file)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var snap config.Snapshot
	if err := json.Unmarshal(b, &snap); err != nil {
		fmt.Fprintln(os.Stderr, "snapshot:", err)
		return 1
	}
	mux := http.NewServeMux()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	e, err := edge.New(edge.Options{Node: node, Logger: log, Registry: prometheus.NewRegistry(), Mux: mux})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := role.Apply(ctx, e, &snap); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ln, err := net.Listen("tcp", admin)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	<-ctx.Done()
	srv.Close()
	cctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	e.Close(cctx)
	return 0
}

// runToxiproxy serves toxiproxy's API (args: host, port); the test makes
// the proxy and its toxics through it.
func runToxiproxy(args []string) int {
	s := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	s.Listen(args[0], args[1])
	return 1
}
