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
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

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
	// complete says what the shell completes the positional arguments
	// with: model files (the default), run directories, or nothing.
	complete argKind
	setup    func(fs *pflag.FlagSet) func(c *cli, args []string) int
}

// argKind is what a command's positional arguments are, for completion.
type argKind uint8

const (
	argFiles argKind = iota // .attn files
	argDirs                 // run directories
	argNone
)

var commands []*command

func init() {
	commands = []*command{checkCmd, irCmd, buildCmd, trainCmd, evalCmd, predictCmd, generateCmd, exportCmd, plotCmd, benchCmd, fmtCmd, versionCmd}
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

// exitCode is a command's non-zero exit status, carried out of cobra as
// an error.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// A flagError is a command line cobra or pflag refused: an unknown or
// malformed flag, an argument a command takes none of. It exits 2.
type flagError struct {
	cmd string // the subcommand, or "" for attnc itself
	msg string
}

func (e *flagError) Error() string { return e.msg }

// run parses args with cobra (flags before or after the files, --long
// and -short forms, and the single-dash long forms Go's flag package
// taught users, -steps 10) and runs the command. Help goes to stdout,
// errors to stderr; the result is the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	c := &cli{stdout: stdout, stderr: stderr}
	if len(args) == 0 {
		c.usage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help":
		c.usage(stdout)
		return exitOK
	case "-version", "--version":
		args = append([]string{"version"}, args[1:]...)
	}
	root, subs := c.commandTree()
	switch name := args[0]; {
	case name == "completion" && (len(args) < 2 || !slices.Contains([]string{"bash", "zsh", "fish", "powershell", "-h", "--help", "help"}, args[1])):
		return c.usageError("completion", "want one of bash, zsh, fish or powershell, as attnc completion bash > /etc/bash_completion.d/attnc")
	case name == "help" || name == "completion" || strings.HasPrefix(name, cobra.ShellCompRequestCmd):
	case lookup(name) == nil:
		fmt.Fprintf(stderr, "attnc: unknown command %q%s\nRun 'attnc help' for the list of commands.\n", name, suggestCommand(name))
		return exitUsage
	default:
		args = append([]string{name}, longFlags(subs[name].Flags(), args[1:])...)
	}
	root.SetArgs(args)
	err := root.Execute()
	var code exitCode
	var fe *flagError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &code):
		return int(code)
	case errors.As(err, &fe) && fe.cmd == "help":
		fmt.Fprintf(stderr, "attnc help: %s\nRun 'attnc help' for the list of commands.\n", fe.msg)
		return exitUsage
	case errors.As(err, &fe) && fe.cmd != "":
		return c.usageError(fe.cmd, "%s", fe.msg)
	default:
		fmt.Fprintf(stderr, "attnc: %v\nRun 'attnc help' for usage.\n", err)
		return exitUsage
	}
}

// commandTree builds attnc's cobra commands: the root, and each command
// of commands with its flags, by name.
func (c *cli) commandTree() (*cobra.Command, map[string]*cobra.Command) {
	root := &cobra.Command{
		Use:           "attnc",
		Short:         "attnc compiles neural sequence architectures written in .attn files",
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetOut(c.stdout)
	root.SetErr(c.stderr)
	subs := map[string]*cobra.Command{}
	byCobra := map[*cobra.Command]*command{}
	for _, cmd := range commands {
		sub := &cobra.Command{
			Use:               strings.TrimSpace(cmd.name + " " + cmd.args),
			Short:             cmd.summary,
			Long:              cmd.help,
			ValidArgsFunction: completeArgs(cmd.complete),
		}
		sub.Flags().BoolP("help", "h", false, "show this help")
		runFn := cmd.setup(sub.Flags())
		sub.RunE = func(_ *cobra.Command, args []string) error {
			if code := runFn(c, args); code != exitOK {
				return exitCode(code)
			}
			return nil
		}
		root.AddCommand(sub)
		subs[cmd.name] = sub
		byCobra[sub] = cmd
	}
	root.SetFlagErrorFunc(func(cc *cobra.Command, err error) error {
		return &flagError{cmd: cc.Name(), msg: err.Error() + suggestFlag(cc.Flags(), err)}
	})
	root.SetHelpFunc(func(cc *cobra.Command, _ []string) {
		switch cmd := byCobra[cc]; {
		case cmd != nil:
			c.commandHelp(c.stdout, cmd, cc.Flags())
		case cc == root:
			c.usage(c.stdout)
		default: // cobra's own: completion and its shells
			fmt.Fprintf(c.stdout, "%s\n\n%s", strings.TrimSpace(cc.Long), cc.UsageString())
		}
	})
	root.SetHelpCommand(&cobra.Command{
		Use:   "help [command]",
		Short: "print help on attnc or one of its commands",
		RunE: func(_ *cobra.Command, args []string) error {
			switch {
			case len(args) == 0:
				c.usage(c.stdout)
			case len(args) > 1:
				return &flagError{cmd: "help", msg: fmt.Sprintf("want one command, got %d", len(args))}
			case subs[args[0]] != nil:
				c.commandHelp(c.stdout, byCobra[subs[args[0]]], subs[args[0]].Flags())
			case args[0] == "completion":
				if cc, _, err := root.Find([]string{"completion"}); err == nil {
					fmt.Fprintf(c.stdout, "%s\n\n%s", strings.TrimSpace(cc.Long), cc.UsageString())
				}
			default:
				return &flagError{cmd: "help", msg: fmt.Sprintf("unknown command %q%s", args[0], suggestCommand(args[0]))}
			}
			return nil
		},
		ValidArgsFunction: func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			var names []string
			for _, cmd := range commands {
				names = append(names, cmd.name)
			}
			return names, cobra.ShellCompDirectiveNoFileComp
		},
	})
	return root, subs
}

// completeArgs says how a shell completes a command's positional
// arguments.
func completeArgs(k argKind) cobra.CompletionFunc {
	return func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		switch k {
		case argFiles:
			return []string{"attn"}, cobra.ShellCompDirectiveFilterFileExt
		case argDirs:
			return nil, cobra.ShellCompDirectiveFilterDirs
		}
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
}

// longFlags rewrites the single-dash long flags of args (-steps 10,
// -dump=plan), which Go's flag package accepts and attnc's docs use, to
// the double-dash form pflag wants (--steps 10); a single letter that is
// also a flag's short form (-o) stays as it is. Everything after "--" is
// left alone.
func longFlags(fs *pflag.FlagSet, args []string) []string {
	out := make([]string, 0, len(args))
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...)
		}
		if len(a) > 1 && a[0] == '-' && a[1] != '-' {
			name, _, _ := strings.Cut(a[1:], "=")
			switch {
			case fs.Lookup(name) != nil && (len(name) > 1 || fs.ShorthandLookup(name) == nil):
				a = "-" + a
			case len(name) > 1 && isLetter(name[0]) && fs.ShorthandLookup(name[:1]) == nil:
				// Not a cluster of short flags (-oDIR) either: an unknown
				// long flag, which pflag then names, with a suggestion.
				a = "-" + a
			}
		}
		out = append(out, a)
	}
	return out
}

func isLetter(b byte) bool { return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' }

// suggestFlag returns ` (did you mean "--steps"?)` for an unknown flag
// close to one of fs's, or "".
func suggestFlag(fs *pflag.FlagSet, err error) string {
	msg := err.Error()
	name, ok := strings.CutPrefix(msg, "unknown flag: --")
	if !ok {
		return ""
	}
	var names []string
	fs.VisitAll(func(f *pflag.Flag) { names = append(names, f.Name) })
	s := lang.Suggest(name, names)
	if s == "" {
		return ""
	}
	// lang.Suggest says ` (did you mean "steps"?)`: name it as a flag.
	return strings.Replace(s, `"`, `"--`, 1)
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

// commandHelp prints a command's usage line, its help text and its flags.
func (c *cli) commandHelp(w io.Writer, cmd *command, fs *pflag.FlagSet) {
	fmt.Fprintf(w, "usage: attnc %s", cmd.name)
	hasFlags := false
	fs.VisitAll(func(f *pflag.Flag) { hasFlags = hasFlags || f.Name != "help" })
	if hasFlags {
		fmt.Fprint(w, " [flags]")
	}
	if cmd.args != "" {
		fmt.Fprint(w, " "+cmd.args)
	}
	fmt.Fprintf(w, "\n\n%s\n", strings.TrimSpace(cmd.help))
	fmt.Fprintf(w, "\nFlags (before or after the arguments; --name or -name, -x for a short form):\n%s\n", strings.TrimRight(fs.FlagUsages(), "\n"))
}

func (c *cli) usage(w io.Writer) {
	fmt.Fprint(w, `attnc compiles neural sequence architectures written in .attn files.

usage: attnc <command> [flags] [arguments]

Commands:
`)
	sorted := append([]*command(nil), commands...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].name < sorted[j].name })
	for _, cmd := range sorted {
		fmt.Fprintf(w, "  %-10s %s\n", cmd.name, cmd.summary)
	}
	fmt.Fprintf(w, "  %-10s %s\n", "completion", "print a shell completion script (bash, zsh, fish or powershell)")
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
