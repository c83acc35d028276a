package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
)

func init() {
	register(command{name: "version", summary: "print the build: module version, VCS revision and time, Go version", run: runVersion})
}

// buildVersion describes the running binary from what the Go toolchain
// stamped into it: `go build` in a git checkout records the revision, its
// time and whether the tree had uncommitted changes.
func buildVersion(bi *debug.BuildInfo, ok bool) string {
	if !ok {
		return "intercloud (no build information)"
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	var b strings.Builder
	fmt.Fprintf(&b, "intercloud %s", bi.Main.Version)
	if rev := settings["vcs.revision"]; rev != "" {
		fmt.Fprintf(&b, "\n  revision %s", rev)
		if t := settings["vcs.time"]; t != "" {
			fmt.Fprintf(&b, " (%s)", t)
		}
		if settings["vcs.modified"] == "true" {
			b.WriteString(", modified")
		}
	}
	fmt.Fprintf(&b, "\n  %s %s/%s", bi.GoVersion, settings["GOOS"], settings["GOARCH"])
	return b.String()
}

func printVersion(w io.Writer) {
	bi, ok := debug.ReadBuildInfo()
	fmt.Fprintln(w, buildVersion(bi, ok))
}

func runVersion(_ context.Context, args []string) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	if err := fs.Parse(args); err != nil {
		return err
	}
	printVersion(os.Stdout)
	return nil
}
