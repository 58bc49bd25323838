package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// runCLI runs the command line and returns its exit code and output.
func runCLI(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := run(context.Background(), append([]string{"cachix-select"}, args...), strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

// --help anywhere among a command's flags shows its help, whatever the
// arguments before it (urfave/cli took the first for a help topic: exit 1).
func TestHelpAfterTheArguments(t *testing.T) {
	for _, args := range [][]string{
		{"push", "mycache", "./result", "--help"},
		{"push", "--to", "file:///x", "./result", "-h"},
		{"pin", "mycache", "x", "./result", "--help"},
		{"manifest", "check", "x.json", "--help"},
		{"pins", "export", "mycache", "-o", "d", "--help"},
	} {
		code, out, errOut := runCLI(args...)
		if code != 0 || !strings.Contains(out, "USAGE:") || !strings.Contains(out, "cachix-select "+args[0]) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want the command's help", args, code, out, errOut)
		}
	}
}

// A misspelt command or subcommand gets the one meant.
func TestUnknownCommandSuggests(t *testing.T) {
	for args, want := range map[string]string{
		"queue lst":     `unknown command "queue lst" (did you mean queue list?)`,
		"manifest chek": `unknown command "manifest chek" (did you mean manifest check?)`,
		"pushh x":       `unknown command "pushh" (did you mean push?)`,
		"frobnicate":    `unknown command "frobnicate" (commands:`,
	} {
		code, _, errOut := runCLI(strings.Fields(args)...)
		if code != 2 || !strings.Contains(errOut, want) {
			t.Errorf("%s: exit %d, stderr %q; want 2 saying %q", args, code, errOut, want)
		}
	}
}

// activate's command line that it cannot read is exit 2 even without
// --strict (a hand-written hook with a typo must not silently never push);
// a manifest it cannot read is a warning, exit 0.
func TestActivateCommandLine(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	for args, want := range map[string]string{
		"activate --mode fg m.json":        "--mode must be background or foreground, not fg",
		"activate":                         "activate takes exactly one MANIFEST.json, not 0 arguments",
		"activate a.json b.json":           "not 2 arguments",
		"activate --timeout 0s m.json":     "--timeout 0s is no time at all",
		"activate --timeout abc m.json":    `invalid value "abc" for --timeout`,
		"activate --mode foregrund m.json": "not foregrund",
	} {
		code, _, errOut := runCLI(strings.Fields(args)...)
		if code != 2 || !strings.Contains(errOut, want) {
			t.Errorf("%s: exit %d, stderr %q; want 2 saying %q", args, code, errOut, want)
		}
	}
	code, _, errOut := runCLI("activate", t.TempDir()+"/missing.json")
	if code != 0 || !strings.Contains(errOut, "warning:") || !strings.Contains(errOut, "activation continues") {
		t.Errorf("missing manifest: exit %d, stderr %q; want 0 with a warning", code, errOut)
	}
}

// A flag's value that reads "-h" is that value, not a request for help.
func TestHelpAsAFlagValue(t *testing.T) {
	code, out, _ := runCLI("pin", "mycache", "x", "/nix/store/00000000000000000000000000000000-none", "--artifact", "-h")
	if code == 0 || strings.Contains(out, "USAGE:") {
		t.Errorf("--artifact -h showed help (exit %d)", code)
	}
}
