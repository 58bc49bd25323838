// Command measure runs a command and prints, as one line, its wall time in
// seconds, its peak resident set size in KiB and the CPU seconds (user +
// system) it used: "<secs> <kib> <cpu-secs>". The figures come from the
// kernel's accounting of the child (wait4), which includes the processes
// it started and waited for (a push's nix subprocesses), not processes it
// only talked to (a server). The command's stdout goes to FILE with -o,
// else is discarded; its stderr passes through. The benchmark uses it
// because /usr/bin/time is not always installed.
//
// Usage: measure [-o FILE] COMMAND [ARGS...]
package main

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

func main() {
	args := os.Args[1:]
	out := os.DevNull
	if len(args) >= 2 && args[0] == "-o" {
		out, args = args[1], args[2:]
	}
	if len(args) < 1 {
		fmt.Fprintln(os.Stderr, "usage: measure [-o FILE] COMMAND [ARGS...]")
		os.Exit(2)
	}
	f, err := os.Create(out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "measure:", err)
		os.Exit(2)
	}
	defer f.Close()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, f, os.Stderr
	start := time.Now()
	err = cmd.Run()
	wall := time.Since(start)
	var rss int64
	var cpu time.Duration
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rss = ru.Maxrss // KiB on Linux
		cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	fmt.Printf("%.3f %d %.3f\n", wall.Seconds(), rss, cpu.Seconds())
	if err != nil {
		fmt.Fprintln(os.Stderr, "measure:", err)
		os.Exit(1)
	}
}
