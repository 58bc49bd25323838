package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRunServesUntilCancelled starts the command in-process, reads its
// startup line, uses the token from the file, and stops it.
func TestRunServesUntilCancelled(t *testing.T) {
	t.Parallel()
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("s3cret-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--cache", "one", "--cache", "two", "--token-file", tokenFile, "--data-dir", t.TempDir(), "--defer-verification"}, pw, io.Discard)
		pw.Close()
	}()

	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("reading startup line: %v", err)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	var out struct {
		URL            string `json:"url"`
		BinaryCacheURL string `json:"binaryCacheURL"`
		PublicKey      string `json:"publicKey"`
		ControlURL     string `json:"controlURL"`
		Caches         map[string]struct {
			BinaryCacheURL string `json:"binaryCacheURL"`
		} `json:"caches"`
	}
	if err := json.Unmarshal([]byte(line), &out); err != nil {
		t.Fatalf("startup line %q: %v", line, err)
	}
	if !strings.HasPrefix(out.URL, "http://127.0.0.1:") || out.BinaryCacheURL != out.URL+"/binary-cache/one" ||
		!strings.HasPrefix(out.PublicKey, "one.cachix.org-1:") || out.Caches["two"].BinaryCacheURL != out.URL+"/binary-cache/two" {
		t.Errorf("startup line %s", line)
	}
	if strings.Contains(line, "s3cret") {
		t.Error("the token leaked into the startup line")
	}

	for token, want := range map[string]int{"s3cret-token": 200, "": 401} {
		req, _ := http.NewRequest("GET", out.URL+"/api/v1/cache/two", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("token %q: status %d, want %d", token, resp.StatusCode, want)
		}
	}

	// The benchmark's check after a push: nothing was completed, nothing to verify.
	resp, err := http.Post(out.ControlURL+"/verify", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if got := strings.TrimSpace(string(body)); resp.StatusCode != 200 || got != `{"checked":0,"failures":[]}` {
		t.Errorf("POST /verify: %d %s", resp.StatusCode, got)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run returned %v after cancellation", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not stop after cancellation")
	}
}

// TestRunRejectsBadUsage checks usage errors are reported as such.
func TestRunRejectsBadUsage(t *testing.T) {
	t.Parallel()
	tests := [][]string{
		{"--fault-kinds", "418"},
		{"extra-argument"},
		{"--no-such-flag"},
	}
	for _, args := range tests {
		err := run(context.Background(), args, io.Discard, io.Discard)
		if !errors.Is(err, errUsage) {
			t.Errorf("%q: %v, want a usage error", args, err)
		}
	}
	err := run(context.Background(), []string{"--token-file", filepath.Join(t.TempDir(), "missing")}, io.Discard, io.Discard)
	if err == nil || errors.Is(err, errUsage) || !strings.Contains(err.Error(), "reading token file") {
		t.Errorf("missing token file: %v", err)
	}
}
