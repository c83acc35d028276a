package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/intercloud/intercloud/origin"
)

func init() {
	register(command{
		name:    "origin",
		summary: "run the origin HTTP server; 'origin deploy|activate|versions' manage its versions",
		run:     runOrigin,
	})
}

func runOrigin(ctx context.Context, args []string) error {
	if len(args) > 0 {
		switch args[0] {
		case "deploy":
			return runOriginDeploy(args[1:])
		case "activate":
			return runOriginActivate(args[1:])
		case "versions":
			return runOriginVersions(args[1:])
		}
	}
	fs := flag.NewFlagSet("origin", flag.ContinueOnError)
	root := fs.String("root", "", "directory holding the versions and the 'current' pointer")
	listen := fs.String("listen", "", "content address, e.g. 127.0.0.1:9001")
	adminAddr := fs.String("admin", "", "optional separate address for /metrics, /healthz, /readyz")
	cfgFile := fs.String("config", "", "optional YAML config (root, listen, admin, tokenFile, cacheRules, maxUpload); reread on SIGHUP")
	tokenFile := fs.String("token-file", "", "file holding the bearer token for PUT/DELETE (none: uploads disabled)")
	grace := fs.Duration("grace", 10*time.Second, "how long requests in flight may finish on SIGTERM")
	logger := logFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: intercloud origin --root DIR --listen ADDR [flags]\n"+
			"       intercloud origin deploy --root DIR --from SRC [--version V] [--activate]\n"+
			"       intercloud origin activate --root DIR VERSION\n"+
			"       intercloud origin versions --root DIR [-j]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return errUsage
	}
	log := logger()
	// Flags given on the command line win over the config file, on start
	// and on every reload.
	load := func() (origin.Config, error) {
		var c origin.Config
		if *cfgFile != "" {
			var err error
			if c, err = origin.LoadConfigFile(*cfgFile); err != nil {
				return c, err
			}
		}
		fs.Visit(func(f *flag.Flag) {
			switch f.Name {
			case "root":
				c.Root = *root
			case "listen":
				c.Listen = *listen
			case "admin":
				c.Admin = *adminAddr
			case "token-file":
				c.TokenFile = *tokenFile
			}
		})
		return c, nil
	}
	cfg, err := load()
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), collectors.NewBuildInfoCollector())
	srv, err := origin.New(cfg, origin.Options{Logger: log, Registry: reg, Gatherer: reg})
	if err != nil {
		return err
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			c, err := load()
			if err == nil {
				err = srv.Reload(c)
			}
			if err != nil {
				log.Error("reload failed; keeping the previous config", "err", err)
			}
		}
	}()
	return srv.Run(ctx, *grace)
}

func runOriginDeploy(args []string) error {
	fs := flag.NewFlagSet("origin deploy", flag.ContinueOnError)
	root := fs.String("root", "", "origin root directory")
	from := fs.String("from", "", "directory to copy in as a new version")
	version := fs.String("version", "", "version name (default: derived from the content)")
	activate := fs.Bool("activate", false, "activate the version once it is in place")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *root == "" || *from == "" || fs.NArg() > 0 {
		fmt.Fprintln(fs.Output(), "usage: intercloud origin deploy --root DIR --from SRC [--version V] [--activate]")
		return errUsage
	}
	res, err := origin.Deploy(*root, *from, *version)
	if err != nil {
		return err
	}
	if res.Existed {
		fmt.Printf("version %s already holds this content; nothing copied\n", res.Version)
	} else {
		fmt.Printf("deployed version %s: %d files, %d bytes\n", res.Version, res.Files, res.Bytes)
	}
	for _, s := range res.Skipped {
		fmt.Fprintf(os.Stderr, "skipped hidden %s\n", s)
	}
	if *activate {
		if err := origin.Activate(*root, res.Version); err != nil {
			return err
		}
		fmt.Printf("activated %s\n", res.Version)
	}
	return nil
}

func runOriginActivate(args []string) error {
	fs := flag.NewFlagSet("origin activate", flag.ContinueOnError)
	root := fs.String("root", "", "origin root directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *root == "" || fs.NArg() != 1 {
		fmt.Fprintln(fs.Output(), "usage: intercloud origin activate --root DIR VERSION")
		return errUsage
	}
	prev, err := origin.Active(*root)
	if err != nil && !errors.Is(err, origin.ErrNoVersion) {
		return err
	}
	if err := origin.Activate(*root, fs.Arg(0)); err != nil {
		return err
	}
	if prev != "" {
		fmt.Printf("activated %s (was %s)\n", fs.Arg(0), prev)
	} else {
		fmt.Printf("activated %s\n", fs.Arg(0))
	}
	return nil
}

func runOriginVersions(args []string) error {
	fs := flag.NewFlagSet("origin versions", flag.ContinueOnError)
	root := fs.String("root", "", "origin root directory")
	asJSON := fs.Bool("j", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *root == "" || fs.NArg() > 0 {
		fmt.Fprintln(fs.Output(), "usage: intercloud origin versions --root DIR [-j]")
		return errUsage
	}
	vs, err := origin.Versions(*root)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(vs)
	}
	for _, v := range vs {
		mark := " "
		if v.Active {
			mark = "*"
		}
		fmt.Printf("%s %s\n", mark, v.Name)
	}
	return nil
}
