// Command attnc compiles .attn model files.
//
//	attnc check FILE...            parse and check; positioned errors
//	attnc ir [-dump=PASS] [-time] FILE
//	attnc build -o DIR FILE        a Go package
//	attnc bench [flags] FILE       time a model's Forward and LossAndGrad
//	attnc bench -kernels [-peers]  time the runtime's kernels (against PyTorch)
//	attnc fmt [-w] [-l] FILE...
//	attnc version
//
// Exit status: 0 on success, 1 when a file has errors, 2 on a usage error.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/attnc/attnc/lang"
)

// Version is attnc's version; release builds set it with -ldflags.
var Version = "0.1.0-dev"

// Exit statuses.
const (
	exitOK    = 0
	exitError = 1 // the input has problems
	exitUsage = 2 // the command line is wrong
)

// A command is one subcommand: its flags are declared on fs by setup,
// run does the work.
type command struct {
	name    string
	args    string // synopsis of the positional arguments
	summary string
	help    string
	setup   func(fs *flag.FlagSet) func(c *cli, args []string) int
}

var commands []*command

func init() {
	commands = []*command{checkCmd, irCmd, buildCmd, trainCmd, evalCmd, predictCmd, benchCmd, fmtCmd, versionCmd}
}

// cli carries the streams a command writes to, so tests run commands in
// process.
type cli struct {
	stdout, stderr io.Writer
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// errUsage marks a usage error inside a command.
var errUsage = errors.New("usage")

func run(args []string, stdout, stderr io.Writer) int {
	c := &cli{stdout: stdout, stderr: stderr}
	if len(args) == 0 {
		c.usage(stderr)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help", "help":
		if len(args) > 1 {
			if cmd := lookup(args[1]); cmd != nil {
				fs, _ := c.flags(cmd)
				fs.SetOutput(stdout)
				fs.Usage()
				return exitOK
			}
		}
		c.usage(stdout)
		return exitOK
	case "-version", "--version":
		name = "version"
	}
	cmd := lookup(name)
	if cmd == nil {
		fmt.Fprintf(stderr, "attnc: unknown command %q%s\nRun 'attnc help' for the list of commands.\n", name, suggestCommand(name))
		return exitUsage
	}
	fs, runFn := c.flags(cmd)
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	return runFn(c, fs.Args())
}

func lookup(name string) *command {
	for _, cmd := range commands {
		if cmd.name == name {
			return cmd
		}
	}
	return nil
}

func suggestCommand(name string) string {
	var names []string
	for _, cmd := range commands {
		names = append(names, cmd.name)
	}
	return lang.Suggest(name, names)
}

func (c *cli) flags(cmd *command) (*flag.FlagSet, func(*cli, []string) int) {
	fs := flag.NewFlagSet("attnc "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	runFn := cmd.setup(fs)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "usage: attnc %s", cmd.name)
		hasFlags := false
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			fmt.Fprint(w, " [flags]")
		}
		if cmd.args != "" {
			fmt.Fprint(w, " "+cmd.args)
		}
		fmt.Fprintf(w, "\n\n%s\n", strings.TrimSpace(cmd.help))
		if hasFlags {
			fmt.Fprintln(w, "\nFlags:")
			fs.PrintDefaults()
		}
	}
	return fs, runFn
}

func (c *cli) usage(w io.Writer) {
	fmt.Fprint(w, `attnc compiles neural sequence architectures written in .attn files.

usage: attnc <command> [flags] [arguments]

Commands:
`)
	sorted := append([]*command(nil), commands...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].name < sorted[j].name })
	for _, cmd := range sorted {
		fmt.Fprintf(w, "  %-9s %s\n", cmd.name, cmd.summary)
	}
	fmt.Fprint(w, `
Run 'attnc help <command>' for a command's flags.
Exit status: 0 on success, 1 when an input has errors, 2 on a usage error.
`)
}

// usageError prints msg and the command's usage line, for exit 2.
func (c *cli) usageError(cmd string, format string, args ...any) int {
	fmt.Fprintf(c.stderr, "attnc %s: %s\n", cmd, fmt.Sprintf(format, args...))
	fmt.Fprintf(c.stderr, "Run 'attnc help %s' for usage.\n", cmd)
	return exitUsage
}
