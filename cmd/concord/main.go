package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

// Exit codes (documented in doc.go and in the usage text).
const (
	exitOK          = 0
	exitFailure     = 1   // a runtime failure, or a demo round that did not converge
	exitUsage       = 2   // bad command line
	exitUnsupported = 127 // interop: a transport, security or muxer Concord does not have
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// env is what a command may use of the outside world; tests build their own.
type env struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	// terminal is true when stdout is a terminal: perf then draws a
	// progress line with carriage returns.
	terminal bool
}

// command is one subcommand.
type command struct {
	name    string
	args    string // synopsis after the flags, e.g. "ADDR"
	summary string
	help    string // paragraphs shown by -h after the synopsis
	// flags adds the command's flags to fs and returns the function that
	// runs it with the positional arguments.
	flags func(fs *flag.FlagSet) func(ctx context.Context, e *env, args []string) error
}

func commands() []command {
	return []command{demoCommand, idCommand, listenCommand, pingCommand, perfCommand, interopCommand, conformanceCommand}
}

// run is the whole program: it parses args (without the program name),
// runs the command and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runEnv(ctx, args, &env{stdout: stdout, stderr: stderr, getenv: os.Getenv, terminal: isTerminal(stdout)})
}

func runEnv(ctx context.Context, args []string, e *env) int {
	if len(args) == 0 {
		printUsage(e.stderr)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help", "help":
		if name == "help" && len(args) > 1 {
			if c, ok := lookup(args[1]); ok {
				fs, _ := newFlagSet(c)
				printCommandUsage(e.stdout, c, fs)
				return exitOK
			}
			return fail(e, usageErrorf("help: unknown command %q (see 'concord -h')", args[1]))
		}
		printUsage(e.stdout)
		return exitOK
	}
	c, ok := lookup(name)
	if !ok {
		return fail(e, usageErrorf("unknown command %q (see 'concord -h')", name))
	}
	fs, runner := newFlagSet(c)
	pos, err := parseInterspersed(fs, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		printCommandUsage(e.stdout, c, fs)
		return exitOK
	}
	if err != nil {
		return fail(e, usageErrorf("%s: %s (see 'concord %s -h')", c.name, explainFlagError(fs, err), c.name))
	}
	err = runner(ctx, e, pos)
	// One style for every usage error: what is wrong, then where to look.
	var ue *usageError
	if errors.As(err, &ue) && !strings.Contains(ue.msg, "(see 'concord ") {
		ue.msg += fmt.Sprintf(" (see 'concord %s -h')", c.name)
	}
	return fail(e, err)
}

// flagValueError is the flag package's message for a rejected value; for
// its own parsers the reason is only "parse error" or "value out of range".
var flagValueError = regexp.MustCompile(`^invalid value (".*") for flag -([^:]+): (.*)$`)

// explainFlagError rewrites the flag package's value errors into the
// command's style, -flag "value": reason, saying what the flag wants where
// the flag package says only "parse error".
func explainFlagError(fs *flag.FlagSet, err error) string {
	m := flagValueError.FindStringSubmatch(err.Error())
	if m == nil {
		return err.Error()
	}
	value, name, why := m[1], m[2], m[3]
	f := fs.Lookup(name)
	if f == nil {
		return err.Error()
	}
	if why != "parse error" && why != "value out of range" {
		return fmt.Sprintf("-%s %s: %s", name, value, why)
	}
	want := "a valid value"
	if g, ok := f.Value.(flag.Getter); ok {
		switch g.Get().(type) {
		case int, int64:
			want = "an integer"
		case uint, uint64:
			want = "a non-negative integer"
		case float64:
			want = "a number"
		case time.Duration:
			want = "a duration such as 500ms, 2s or 1m30s"
		case bool:
			want = "true or false"
		}
	}
	if why == "value out of range" {
		want += " in range"
	}
	return fmt.Sprintf("-%s %s: want %s", name, value, want)
}

func lookup(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// newFlagSet returns c's flags and the function that runs c with them.
func newFlagSet(c command) (*flag.FlagSet, func(context.Context, *env, []string) error) {
	fs := flag.NewFlagSet("concord "+c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported in one line by fail
	fs.Usage = func() {}
	return fs, c.flags(fs)
}

// parseInterspersed parses flags that may come before, between or after the
// positional arguments ("concord perf ADDR -download-bytes N"); "--" ends
// the flags.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if rest[0] == "--" {
			return append(pos, rest[1:]...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// usageError is a bad command line: exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, a ...any) error {
	return &usageError{msg: fmt.Sprintf(format, a...)}
}

// errUnsupported marks an interop case Concord cannot run: exit code 127.
var errUnsupported = errors.New("unsupported")

// fail prints err in one line on stderr and returns its exit code.
func fail(e *env, err error) int {
	if err == nil {
		return exitOK
	}
	msg := strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " ")
	fmt.Fprintf(e.stderr, "concord: %s\n", msg)
	var ue *usageError
	switch {
	case errors.As(err, &ue):
		return exitUsage
	case errors.Is(err, errUnsupported):
		return exitUnsupported
	}
	return exitFailure
}

// exactArgs checks the number of positional arguments.
func exactArgs(cmd string, args []string, names ...string) error {
	if len(args) == len(names) {
		return nil
	}
	if len(names) == 0 {
		return usageErrorf("%s: unexpected argument %q (see 'concord %s -h')", cmd, args[0], cmd)
	}
	return usageErrorf("%s: want %s, got %d argument(s) (see 'concord %s -h')", cmd, strings.Join(names, " "), len(args), cmd)
}

const usageTail = `Run 'concord COMMAND -h' for a command's flags. Flags may be written
-flag or --flag, before or after the arguments.

Exit codes:
  0    success
  1    runtime failure (including a demo round that did not end with exactly
       one live connection on both ends, the same one)
  2    usage error
  127  interop: transport, security or muxer not supported
`

func printUsage(w io.Writer) {
	fmt.Fprintf(w, "concord is a libp2p-compatible peer with TCP simultaneous open and one\nconnection per peer pair.\n\nUsage:\n  concord COMMAND [flags] [arguments]\n\nCommands:\n")
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	for _, c := range commands() {
		fmt.Fprintf(tw, "  %s\t%s\n", c.name, c.summary)
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "\n%s", usageTail)
}

func printCommandUsage(w io.Writer, c command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: concord %s [flags]", c.name)
	if c.args != "" {
		fmt.Fprintf(w, " %s", c.args)
	}
	fmt.Fprintf(w, "\n\n%s\n", strings.TrimSpace(c.help))
	hasFlags := false
	fs.VisitAll(func(*flag.Flag) { hasFlags = true })
	if hasFlags {
		fmt.Fprintf(w, "\nFlags:\n")
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	fmt.Fprintf(w, "\nExit codes: 0 success, 1 runtime failure, 2 usage error%s.\n", c.exitNote())
}

func (c command) exitNote() string {
	switch c.name {
	case "demo":
		return "; 1 also when any round does not end with exactly one live connection on both ends"
	case "interop":
		return " (a missing or bad variable too), 127 unsupported transport, security or muxer"
	case "ping":
		return "; 1 when no ping is answered"
	}
	return ""
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
