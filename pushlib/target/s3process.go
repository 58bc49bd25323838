package target

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/cachix-select/cachix-select/pushlib/internal/childenv"
)

// processTimeout bounds one run of a credential_process; renewBefore is
// how long before their Expiration its keys are fetched again (the last
// tenth of their life for keys that live less than ten times that).
const renewBefore = 5 * time.Minute

// processTimeout is a variable for the tests.
var processTimeout = time.Minute

// renewAt is when keys that expire at exp are fetched again, seen at now.
func renewAt(exp, now time.Time) time.Time {
	if life := exp.Sub(now); life < 10*renewBefore {
		return exp.Add(-life / 10) // short-lived keys: renew in the last tenth
	}
	return exp.Add(-renewBefore)
}

// processCreds is a profile's credential_process, run as the AWS SDKs run
// it on Unix — the whole line through sh -c, so a program without
// arguments, quoting and $VARIABLES work — with its JSON output
// ({"Version": 1, "AccessKeyId", "SecretAccessKey", "SessionToken",
// "Expiration"}) kept until five minutes before it expires. minio-go's
// own provider splits the line on spaces and refuses a line of one word.
// The process gets cachix-select's environment without the secrets it
// reads itself; its stderr is shown (first line, shortened) when it fails.
type processCreds struct {
	line   string
	source string

	mu      sync.Mutex
	expires time.Time // zero: never
	have    bool
}

// processOutput is what a credential_process prints.
type processOutput struct {
	Version         int
	AccessKeyID     string `json:"AccessKeyId"`
	SecretAccessKey string
	SessionToken    string
	Expiration      *time.Time
}

// Retrieve runs the process.
func (p *processCreds) Retrieve() (credentials.Value, error) { return p.RetrieveWithCredContext(nil) }

// RetrieveWithCredContext runs the process.
func (p *processCreds) RetrieveWithCredContext(*credentials.CredContext) (credentials.Value, error) {
	ctx, cancel := context.WithTimeout(context.Background(), processTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", p.line)
	cmd.Env = childenv.Environ()
	// The line may start children (a pipeline, a helper): the timeout
	// ends the whole process group, and Output stops waiting for pipes a
	// stray child still holds.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &limitedWriter{w: &stderr, left: 4 << 10}
	out, err := cmd.Output()
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("it did not finish within %s", processTimeout)
		}
		return credentials.Value{}, fmt.Errorf("the credential_process of %s failed: %v%s", p.source, err, stderrSummary(stderr.String()))
	}
	var o processOutput
	if err := json.Unmarshal(out, &o); err != nil {
		// Not the JSON error: it may quote the output, a secret.
		return credentials.Value{}, fmt.Errorf("the credential_process of %s printed no JSON credentials (want {\"Version\": 1, \"AccessKeyId\": …, \"SecretAccessKey\": …})", p.source)
	}
	switch {
	case o.Version != 1:
		return credentials.Value{}, fmt.Errorf("the credential_process of %s printed Version %d; only version 1 is defined", p.source, o.Version)
	case o.AccessKeyID == "" || o.SecretAccessKey == "":
		return credentials.Value{}, fmt.Errorf("the credential_process of %s printed no AccessKeyId or SecretAccessKey", p.source)
	}
	v := credentials.Value{AccessKeyID: o.AccessKeyID, SecretAccessKey: o.SecretAccessKey,
		SessionToken: o.SessionToken, SignerType: credentials.SignatureV4}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.have, p.expires = true, time.Time{}
	if o.Expiration != nil {
		v.Expiration = *o.Expiration
		p.expires = renewAt(*o.Expiration, time.Now())
	}
	return v, nil
}

// IsExpired reports whether the keys must be fetched (again).
func (p *processCreds) IsExpired() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.have || !p.expires.IsZero() && !time.Now().Before(p.expires)
}

// stderrSummary is ": <first line of stderr>", shortened, or "".
func stderrSummary(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	line = strings.TrimSpace(line)
	if line == "" {
		return ""
	}
	if r := []rune(line); len(r) > 200 {
		line = string(r[:200]) + "…"
	}
	return " (it said: " + line + ")"
}

// limitedWriter keeps the first left bytes written to it.
type limitedWriter struct {
	w    *bytes.Buffer
	left int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if l.left > 0 {
		n := min(len(p), l.left)
		l.w.Write(p[:n])
		l.left -= n
	}
	return len(p), nil
}
