// Command intercloud is the one binary of the suite: daemons and CLI alike.
// This package parses flags and wires packages together; it holds no logic.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
)

// command is one subcommand. Each file of this package registers its own in
// init, so that adding a subcommand touches one file.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string) error
}

var commands = map[string]command{}

func register(c command) {
	if _, dup := commands[c.name]; dup {
		panic("duplicate command " + c.name)
	}
	commands[c.name] = c
}

// errUsage makes main print usage and exit 2 without another message.
var errUsage = errors.New("usage")

// exitError carries an exit status other than 1.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: intercloud COMMAND [flags]\n\ncommands:")
	names := slices.Sorted(maps.Keys(commands))
	for _, n := range names {
		fmt.Fprintf(w, "  %-12s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nrun 'intercloud COMMAND -h' for a command's flags")
}

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		usage(os.Stderr)
		os.Exit(2)
	}
	if os.Args[1] == "--version" || os.Args[1] == "-version" {
		printVersion(os.Stdout)
		return
	}
	c, ok := commands[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "intercloud: unknown command %q\n\n", os.Args[1])
		usage(os.Stderr)
		os.Exit(2)
	}
	// SIGTERM and Ctrl-C cancel the context: daemons stop gracefully.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := c.run(ctx, os.Args[2:])
	if err == nil {
		return
	}
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if errors.Is(err, errUsage) {
		os.Exit(2)
	}
	msg := strings.TrimSpace(err.Error())
	if strings.Contains(msg, "\n") {
		msg = "\n" + msg // a list of errors, one per line
	}
	fmt.Fprintf(os.Stderr, "intercloud %s: %s\n", c.name, msg)
	var ee *exitError
	if errors.As(err, &ee) {
		os.Exit(ee.code)
	}
	os.Exit(1)
}

// logFlags adds --log-format and --log-level to a flag set and returns a
// function that builds the logger once flags are parsed.
func logFlags(fs *flag.FlagSet) func() *slog.Logger {
	format := fs.String("log-format", "text", "log format: text or json")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	return func() *slog.Logger {
		var lv slog.Level
		if err := lv.UnmarshalText([]byte(*level)); err != nil {
			lv = slog.LevelInfo
		}
		opts := &slog.HandlerOptions{Level: lv}
		var h slog.Handler = slog.NewTextHandler(os.Stderr, opts)
		if *format == "json" {
			h = slog.NewJSONHandler(os.Stderr, opts)
		}
		l := slog.New(h)
		slog.SetDefault(l)
		return l
	}
}
