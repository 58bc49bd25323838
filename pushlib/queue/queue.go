// Package queue keeps pushes that could not happen yet, and what was
// already pushed, in a per-user (or per-system) state directory, so that a
// switch never waits on the network and a push is never forgotten.
//
// Layout of the state directory (mode 0700):
//
//	queue/<id>.json   one queued manifest (its content, attempts, last error)
//	pushed.json       store paths the cache confirmed, per cache
//	flush.lock        held by the one flush running for this directory
//	push.log          output of background flushes
//
// Every file is replaced atomically (temp file + rename), so a crash never
// leaves half an entry behind.
package queue

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/cachix-select/cachix-select/pushlib/internal/atomicfile"
)

// ErrLocked means another flush holds the lock.
var ErrLocked = errors.New("another flush is running")

// SystemDir is the state directory of the NixOS module: its activation
// and its system unit pass it explicitly (--state-dir), and the command
// line looks at it too when run as root (see Dirs).
const SystemDir = "/var/lib/cachix-select"

// DefaultDir is $XDG_STATE_HOME/cachix-select, or
// ~/.local/state/cachix-select, for every user, root included: where a
// hook run by that user (home-manager, a shellHook) queues, so that the
// same user's `queue list` and `queue flush` find it.
func DefaultDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "cachix-select")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), fmt.Sprintf("cachix-select-%d", os.Getuid()))
	}
	return filepath.Join(home, ".local", "state", "cachix-select")
}

// Dirs are the state directories the command line reads when no
// directory is given: DefaultDir, and for root also systemDir (normally
// SystemDir) when it exists, since root owns the NixOS system queue too.
func Dirs(systemDir string) []string {
	dirs := []string{DefaultDir()}
	if os.Geteuid() != 0 || systemDir == "" || filepath.Clean(systemDir) == filepath.Clean(dirs[0]) {
		return dirs
	}
	if fi, err := os.Stat(systemDir); err == nil && fi.IsDir() {
		dirs = append(dirs, systemDir)
	}
	return dirs
}

// Dir is a state directory.
type Dir struct{ Path string }

// Open creates the state directory (mode 0700) if needed.
func Open(path string) (*Dir, error) {
	if err := os.MkdirAll(filepath.Join(path, "queue"), 0o700); err != nil {
		return nil, fmt.Errorf("creating state directory: %w", err)
	}
	if err := os.Chmod(path, 0o700); err != nil {
		return nil, fmt.Errorf("securing state directory: %w", err)
	}
	return &Dir{Path: path}, nil
}

// Entry is one queued manifest.
type Entry struct {
	ID string `json:"id"`
	// ManifestFile is where the manifest came from (informational).
	ManifestFile string `json:"manifestFile"`
	// Manifest is the manifest itself, so the entry survives the file.
	Manifest json.RawMessage `json:"manifest"`
	// Host is the Cachix API host the manifest's cache had when it was
	// queued when that is not cachix.org's, "" otherwise (and for other
	// caches, and older entries): a host from cachix.dhall is decided once,
	// by the activation, so that a flush that cannot read that file (a
	// hardened unit, another environment) pushes to the same host, and
	// records it under the same key, instead of falling back to cachix.org.
	Host       string     `json:"host,omitempty"`
	EnqueuedAt time.Time  `json:"enqueuedAt"`
	Attempts   int        `json:"attempts"`
	LastTry    *time.Time `json:"lastTry,omitempty"`
	LastError  string     `json:"lastError,omitempty"`
}

// IDOf names a manifest by its content, so enqueueing it twice keeps one entry.
func IDOf(manifest []byte) string {
	sum := sha256.Sum256(manifest)
	return hex.EncodeToString(sum[:8])
}

func (d *Dir) entryFile(id string) string { return filepath.Join(d.Path, "queue", id+".json") }

// Enqueue adds a manifest (or refreshes the existing entry for the same content).
func (d *Dir) Enqueue(manifestFile string, manifest []byte) (*Entry, error) {
	return d.EnqueueFor(manifestFile, manifest, "")
}

// EnqueueFor is Enqueue for a manifest whose Cachix cache is on host
// (see Entry.Host; "" keeps what the entry had).
func (d *Dir) EnqueueFor(manifestFile string, manifest []byte, host string) (*Entry, error) {
	if !json.Valid(manifest) {
		return nil, errors.New("enqueueing: the manifest is not valid JSON")
	}
	e := &Entry{ID: IDOf(manifest), ManifestFile: manifestFile, Manifest: json.RawMessage(manifest), Host: host,
		EnqueuedAt: time.Now().UTC()}
	if old, err := d.Get(e.ID); err == nil {
		e.Attempts, e.LastTry, e.LastError, e.EnqueuedAt = old.Attempts, old.LastTry, old.LastError, old.EnqueuedAt
		if e.Host == "" {
			e.Host = old.Host
		}
	}
	return e, d.Save(e)
}

// Save writes an entry.
func (d *Dir) Save(e *Entry) error {
	b, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(d.entryFile(e.ID), b)
}

// Get reads one entry.
func (d *Dir) Get(id string) (*Entry, error) {
	b, err := os.ReadFile(d.entryFile(id))
	if err != nil {
		return nil, err
	}
	var e Entry
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("reading queue entry %s: %w", id, err)
	}
	return &e, nil
}

// List returns the queued entries, oldest first. Unreadable entries are
// returned as errors in bad, not silently skipped.
func (d *Dir) List() (entries []*Entry, bad []error, err error) {
	// ReadDir, not Glob: the state directory's own name may hold glob
	// metacharacters (a backslash, brackets).
	files, err := os.ReadDir(filepath.Join(d.Path, "queue"))
	if err != nil {
		return nil, nil, fmt.Errorf("listing the queue: %w", err)
	}
	for _, f := range files {
		name := f.Name()
		if !strings.HasSuffix(name, ".json") || strings.HasPrefix(name, ".") {
			continue
		}
		e, err := d.Get(strings.TrimSuffix(name, ".json"))
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				bad = append(bad, err)
			}
			continue
		}
		entries = append(entries, e)
	}
	sort.Slice(entries, func(i, j int) bool {
		if !entries[i].EnqueuedAt.Equal(entries[j].EnqueuedAt) {
			return entries[i].EnqueuedAt.Before(entries[j].EnqueuedAt)
		}
		return entries[i].ID < entries[j].ID
	})
	return entries, bad, nil
}

// Remove deletes an entry once its push is confirmed (or it is obsolete).
func (d *Dir) Remove(id string) error {
	err := os.Remove(d.entryFile(id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// Lock is a held flush lock.
type Lock struct{ f *os.File }

// TryLock takes the flush lock without waiting (ErrLocked if busy), or
// waits for it when wait is set.
func (d *Dir) TryLock(wait bool) (*Lock, error) {
	f, err := os.OpenFile(filepath.Join(d.Path, "flush.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the flush lock: %w", err)
	}
	how := syscall.LOCK_EX
	if !wait {
		how |= syscall.LOCK_NB
	}
	if err := syscall.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, ErrLocked
		}
		return nil, fmt.Errorf("taking the flush lock: %w", err)
	}
	return &Lock{f}, nil
}

// Busy reports whether a flush holds the lock right now.
func (d *Dir) Busy() bool {
	l, err := d.TryLock(false)
	if err != nil {
		return errors.Is(err, ErrLocked)
	}
	l.Release()
	return false
}

// Release frees the lock.
func (l *Lock) Release() {
	if l != nil && l.f != nil {
		_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
		l.f.Close()
		l.f = nil
	}
}

// LogFile is where background flushes write.
func (d *Dir) LogFile() string { return filepath.Join(d.Path, "push.log") }

// writeAtomic replaces a state file, synced: the queue must survive a crash.
func writeAtomic(file string, data []byte) error {
	return atomicfile.WriteFile(file, data, 0o600, true)
}
