package ui_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/cachix-select/cachix-select/pushlib"
	"github.com/cachix-select/cachix-select/pushlib/events"
	"github.com/cachix-select/cachix-select/pushlib/ui"
)

// push is one push's events: two paths, one of them failing.
var push = []events.Event{
	{Kind: events.Plan, Cache: "file:///c", Closure: 3, Missing: 2, Present: 1, NarSize: 2048, Message: "zstd level 2"},
	{Kind: events.Start, Cache: "file:///c", Path: "/nix/store/00000000000000000000000000000000-a", NarSize: 1024, Attempt: 1},
	{Kind: events.Progress, Cache: "file:///c", Path: "/nix/store/00000000000000000000000000000000-a", Bytes: 512},
	{Kind: events.Done, Cache: "file:///c", Path: "/nix/store/00000000000000000000000000000000-a", NarSize: 1024, FileSize: 100},
	{Kind: events.Failed, Cache: "file:///c", Path: "/nix/store/11111111111111111111111111111111-b", Error: "disk full"},
	{Kind: events.Summary, Cache: "file:///c", Closure: 3, Missing: 2, Present: 1, Pushed: 1, Failed: 1, NarSize: 1024, FileSize: 100},
}

var errFailed = fmt.Errorf("%w: 1 of 2 paths could not be pushed to file:///c; first: disk full", pushlib.ErrPushFailed)

// show runs the push through a printer made with opts.
func show(opts ui.Options) (stdout, stderr string, reported bool) {
	var out, errOut bytes.Buffer
	opts.Stdout, opts.Stderr, opts.Name = &out, &errOut, "cachix-select"
	p := ui.New(opts)
	for _, e := range push {
		p.Emit(e)
	}
	p.Result(&pushlib.Result{Cache: "file:///c", Closure: 3, Present: 1, Pushed: []pushlib.PathResult{{Path: push[1].Path, NarSize: 1024, FileSize: 100}},
		Failed: []pushlib.PathFailure{{Path: push[4].Path, Err: errors.New("disk full")}}}, errFailed)
	p.Close()
	return out.String(), errOut.String(), p.ReportedErrors()
}

func TestText(t *testing.T) {
	t.Parallel()
	_, stderr, reported := show(ui.Options{})
	want := "Pushing 2 paths (2.0 KiB NAR) to file:///c using zstd level 2 (1 of 3 already present)\n" +
		"Pushing /nix/store/00000000000000000000000000000000-a (1.0 KiB)\n" +
		"error: pushing /nix/store/11111111111111111111111111111111-b: disk full\n" +
		"Pushed 1 path (100 B compressed, 1.0 KiB NAR) to file:///c, 1 already present. 1 failed.\n" +
		"cachix-select: " + errFailed.Error() + "\n"
	if stderr != want || !reported {
		t.Errorf("stderr (reported %v):\n%s\nwant:\n%s", reported, stderr, want)
	}
	_, quiet, _ := show(ui.Options{Quiet: true})
	if quiet != "error: pushing /nix/store/11111111111111111111111111111111-b: disk full\ncachix-select: "+errFailed.Error()+"\n" {
		t.Errorf("quiet:\n%s", quiet)
	}
}

func TestJSON(t *testing.T) {
	t.Parallel()
	stdout, stderr, reported := show(ui.Options{JSON: true, Outcome: func(err error) (int, string) { return 1, "failed: " + err.Error() }})
	if stderr != "" || reported {
		t.Errorf("stderr %q, reported %v", stderr, reported)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != len(push) { // progress is left out without Verbose; the result line is added
		t.Fatalf("%d lines:\n%s", len(lines), stdout)
	}
	var last map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"event", "cache", "closure", "present", "pushed", "confirmed", "narBytes", "fileBytes", "failed", "error", "exitCode"} {
		if _, ok := last[k]; !ok {
			t.Errorf("the result line lacks %q: %s", k, lines[len(lines)-1])
		}
	}
	if last["event"] != "result" || last["exitCode"] != 1.0 || last["error"] != "failed: "+errFailed.Error() ||
		last["failed"].([]any)[0].(map[string]any)["error"] != "disk full" {
		t.Errorf("result line %s", lines[len(lines)-1])
	}
	var first map[string]any
	json.Unmarshal([]byte(lines[0]), &first)
	if first["event"] != "plan" || first["missing"] != 2.0 || first["message"] != "zstd level 2" {
		t.Errorf("plan line %s", lines[0])
	}
}

// lockedBuffer is a bytes.Buffer the bars' goroutine may write to while
// the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// The bars are drawn while the push runs, into any writer the caller
// gives (the CLI wraps stderr), at the width it gives: not only once the
// push is over.
func TestBarsDrawWhileRunning(t *testing.T) {
	t.Parallel()
	var errOut lockedBuffer
	p := ui.New(ui.Options{Stdout: io.Discard, Stderr: &errOut, Bars: true, Width: 100, Name: "cachix-select"})
	for _, e := range push[:3] {
		p.Emit(e)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(errOut.String(), "total") || !strings.Contains(errOut.String(), "512.0 b / 1.0 KiB") {
		if time.Now().After(deadline) {
			t.Fatalf("no bars drawn within 10 s of the first path's progress; stderr so far:\n%q", errOut.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, line := range strings.Split(errOut.String(), "\n") {
		if n := utf8.RuneCountInString(line); n > 100+20 { // escape sequences start some lines
			t.Errorf("a line of %d columns on a 100-column terminal: %q", n, line)
		}
	}
	for _, e := range push[3:] {
		p.Emit(e)
	}
	p.Result(nil, errFailed)
	p.Close()
	if !strings.Contains(errOut.String(), "Pushed 1 path") {
		t.Errorf("no summary after the bars:\n%s", errOut.String())
	}
}
