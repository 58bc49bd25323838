package activate

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/cachix-select/cachix-select/pushlib/fault"
	"github.com/cachix-select/cachix-select/pushlib/internal/childenv"
	"github.com/cachix-select/cachix-select/pushlib/manifest"
	"github.com/cachix-select/cachix-select/pushlib/queue"
)

// Launcher starts a background flush of the queue in d, for the manifest
// m just queued, and says how, for the one line activation prints ("log:
// journalctl -u …"). Tests inject their own.
type Launcher interface {
	Launch(ctx context.Context, d *queue.Dir, m *manifest.Manifest) (how string, err error)
}

// SystemLauncher hands the flush to systemd, or else to a detached
// process of its own.
type SystemLauncher struct {
	// Unit is the systemd unit that flushes the queue ("" for none).
	Unit string
	// UserUnit says Unit is a user unit (systemctl --user).
	UserUnit bool
	// RestartList, with Unit (NixOS), is the file switch-to-configuration
	// reads once it has reloaded systemd: the unit is appended to it
	// instead of started now, and nothing else is ever started.
	RestartList string
	// Credentials are the secret files the unit loads as credentials:
	// systemd refuses to start a unit one of which is missing, failing the
	// switch, so they are checked first (with the manifest's own).
	Credentials []string
	// Program and Args are the detached process's flush command: this
	// program ("" = os.Executable) and its arguments ("queue", "flush", …).
	Program string
	Args    []string
	// LogFile receives the detached process's output ("" = the state
	// directory's push.log).
	LogFile string
}

// Launch starts the flush: through RestartList, else Unit, else (when
// systemd is not usable here) a detached process.
func (l SystemLauncher) Launch(ctx context.Context, d *queue.Dir, m *manifest.Manifest) (string, error) {
	if l.RestartList != "" {
		if l.Unit == "" {
			return "", fault.BadInputf("--restart-list needs --systemd-unit")
		}
		creds := append(append([]string(nil), l.Credentials...), m.Cache.AuthTokenFile, m.Cache.SigningKeyFile)
		if err := CheckCredentials(creds...); err != nil {
			return "", fmt.Errorf("%s would not start: its credential %w", l.Unit, err)
		}
		if err := RequestStart(l.RestartList, l.Unit); err != nil {
			return "", err
		}
		return l.Unit + " once systemd has reloaded; log: journalctl -u " + l.Unit, nil
	}
	if l.Unit != "" {
		if how, ok := startUnit(ctx, l.Unit, l.UserUnit); ok {
			return how, nil
		}
	}
	return l.detach(d)
}

// startUnit starts a systemd unit (a user unit if user) without waiting
// for it; false when systemd is not usable here.
func startUnit(ctx context.Context, unit string, user bool) (string, bool) {
	args := []string{"start", "--no-block", unit}
	journal := "journalctl -u " + unit
	if user {
		args = append([]string{"--user"}, args...)
		journal = "journalctl --user -u " + unit
	} else if _, err := os.Stat("/run/systemd/system"); err != nil {
		return "", false
	}
	if _, err := exec.LookPath("systemctl"); err != nil {
		return "", false
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "systemctl", args...)
	cmd.Env = childenv.Environ()
	if err := cmd.Run(); err != nil {
		return "", false
	}
	return "log: " + journal, true
}

// detach starts the flush command in its own session, its output appended
// to the log file.
func (l SystemLauncher) detach(d *queue.Dir) (string, error) {
	program := l.Program
	if program == "" {
		self, err := os.Executable()
		if err != nil {
			return "", err
		}
		program = self
	}
	logFile := l.LogFile
	if logFile == "" {
		logFile = d.LogFile()
	}
	log, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return "", err
	}
	defer log.Close()
	fmt.Fprintf(log, "\n== %s: %s %s\n", time.Now().Format(time.RFC3339), filepath.Base(program), strings.Join(l.Args, " "))
	cmd := exec.Command(program, l.Args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return "", err
	}
	_ = cmd.Process.Release()
	return "log: " + logFile, nil
}
