// Command stages runs one cachix-select push and prints where its wall
// time went, stage by stage: start-up, each Nix subprocess (the closure
// query, the metadata query), the cache query between them, the uploads,
// and the end. It adds --json to the push and timestamps every event as it
// arrives, and it puts itself first on PATH as `nix` and `nix-store`, so
// that every Nix process the push starts is timed from outside (a wrapper
// costs a millisecond or two per Nix process, which the figures include).
//
// Usage: stages CACHIX-SELECT push [ARGS...]
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The wrapper's environment: where to log, and the PATH to find the real tools in.
const (
	envLog  = "BENCH_STAGES_LOG"
	envPath = "BENCH_STAGES_PATH"
)

func main() {
	switch filepath.Base(os.Args[0]) {
	case "nix", "nix-store":
		os.Exit(wrap(filepath.Base(os.Args[0]), os.Args[1:]))
	}
	if len(os.Args) < 3 || os.Args[2] != "push" {
		fmt.Fprintln(os.Stderr, "usage: stages CACHIX-SELECT push [ARGS...]")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2:]); err != nil {
		fmt.Fprintln(os.Stderr, "stages:", err)
		os.Exit(1)
	}
}

// wrap runs the real Nix tool and logs "start end name what" (Unix nanoseconds).
func wrap(name string, args []string) int {
	var real string
	for _, d := range filepath.SplitList(os.Getenv(envPath)) {
		if p := filepath.Join(d, name); isExecutable(p) {
			real = p
			break
		}
	}
	if real == "" {
		fmt.Fprintf(os.Stderr, "stages: no real %s on $%s\n", name, envPath)
		return 127
	}
	start := time.Now()
	cmd := exec.Command(real, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), "PATH="+os.Getenv(envPath))
	err := cmd.Run()
	end := time.Now()
	what := name
	for _, a := range args {
		if a == "--" || strings.HasPrefix(a, "/") {
			break
		}
		if a == "--extra-experimental-features" || a == "nix-command" {
			continue
		}
		what += " " + a
	}
	if f, ferr := os.OpenFile(os.Getenv(envLog), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644); ferr == nil {
		fmt.Fprintf(f, "%d %d %s\n", start.UnixNano(), end.UnixNano(), what)
		f.Close()
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "stages:", err)
		return 127
	}
	return 0
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// span is one timed interval, relative to the push's start.
type span struct {
	name       string
	start, end time.Duration
}

func run(bin string, args []string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "stages-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	for _, n := range []string{"nix", "nix-store"} {
		if err := os.Symlink(self, filepath.Join(tmp, n)); err != nil {
			return err
		}
	}
	logFile := filepath.Join(tmp, "log")
	cmdArgs := append([]string{args[0], "--json"}, args[1:]...)
	cmd := exec.Command(bin, cmdArgs...)
	cmd.Env = append(os.Environ(), "PATH="+tmp+":"+os.Getenv("PATH"), envLog+"="+logFile, envPath+"="+os.Getenv("PATH"))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	// The first and last time each event kind arrived, and per-path start/done.
	first, last := map[string]time.Duration{}, map[string]time.Duration{}
	counts := map[string]int{}
	started, done := map[string]time.Duration{}, map[string]time.Duration{}
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		at := time.Since(t0)
		var ev struct {
			Event string `json:"event"`
			Path  string `json:"path"`
		}
		if json.Unmarshal(sc.Bytes(), &ev) != nil || ev.Event == "" {
			continue // the result line
		}
		if _, ok := first[ev.Event]; !ok {
			first[ev.Event] = at
		}
		last[ev.Event] = at
		counts[ev.Event]++
		switch ev.Event {
		case "start":
			if _, ok := started[ev.Path]; !ok {
				started[ev.Path] = at
			}
		case "done":
			done[ev.Path] = at
		}
	}
	werr := cmd.Wait()
	total := time.Since(t0)
	if werr != nil {
		return fmt.Errorf("the push failed: %w", werr)
	}

	var nix []span
	if data, err := os.ReadFile(logFile); err == nil {
		for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			f := strings.SplitN(l, " ", 3)
			if len(f) != 3 {
				continue
			}
			s, _ := strconv.ParseInt(f[0], 10, 64)
			e, _ := strconv.ParseInt(f[1], 10, 64)
			nix = append(nix, span{f[2], time.Unix(0, s).Sub(t0), time.Unix(0, e).Sub(t0)})
		}
	}
	sort.Slice(nix, func(i, j int) bool { return nix[i].start < nix[j].start })

	var rows []span
	cursor := time.Duration(0)
	add := func(name string, end time.Duration) {
		if end < cursor {
			end = cursor
		}
		rows = append(rows, span{name, cursor, end})
		cursor = end
	}
	plan, hasPlan := first["plan"]
	for i, s := range nix {
		if hasPlan && s.start > plan {
			break
		}
		gap := "start-up (exec, flags, manifest, store paths)"
		if i > 0 {
			gap = "between Nix processes (open the cache, ask it what it lacks)"
		}
		add(gap, s.start)
		add(s.name, s.end)
	}
	if hasPlan {
		add("after Nix, up to the plan", plan)
	}
	if s, ok := first["start"]; ok {
		add("plan → first upload starts", s)
		add(fmt.Sprintf("uploads and publication (%d paths; first start → last done)", counts["done"]), last["done"])
	}
	if s, ok := first["summary"]; ok {
		add("→ summary event (pins, totals)", s)
	}
	add("→ exit", total)

	fmt.Printf("%-70s %8s %8s %8s %6s\n", "stage", "from s", "to s", "wall s", "share")
	for _, r := range rows {
		fmt.Printf("%-70s %8.3f %8.3f %8.3f %5.1f%%\n", r.name, r.start.Seconds(), r.end.Seconds(),
			(r.end - r.start).Seconds(), 100*(r.end-r.start).Seconds()/total.Seconds())
	}
	var cpu time.Duration
	var rss int64
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		rss = ru.Maxrss
	}
	fmt.Printf("total %.3f s wall, %.3f CPU-s (with its Nix processes), peak RSS %d MiB; %d Nix processes\n",
		total.Seconds(), cpu.Seconds(), rss/1024, len(nix))
	if len(done) > 0 {
		var lat []time.Duration
		for p, d := range done {
			if s, ok := started[p]; ok {
				lat = append(lat, d-s)
			}
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		up := last["done"] - first["start"]
		fmt.Printf("per path, start → done: median %.1f ms, p90 %.1f ms, max %.1f ms; %.0f paths/s while uploading\n",
			ms(lat[len(lat)/2]), ms(lat[len(lat)*9/10]), ms(lat[len(lat)-1]), float64(len(done))/up.Seconds())
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
