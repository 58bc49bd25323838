package cachixserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"
)

// Keep is a pin retention policy as sent on the wire: Tag is "Days",
// "Revisions" or "Forever"; Contents is the count for Days/Revisions.
type Keep struct {
	Tag      string
	Contents int
}

// PinRevision is one pinning of a store path under a pin name.
type PinRevision struct {
	StorePath string
	Artifacts []string
	Keep      *Keep
	CreatedOn time.Time
}

// Pin is a pin name with its retained revisions, oldest first.
type Pin struct {
	Name      string
	CreatedOn time.Time
	Keep      *Keep
	Revisions []PinRevision
}

// pinState is a pin's server-side state; guarded by Server.mu.
type pinState struct {
	name      string
	createdOn time.Time
	keep      *Keep
	revisions []PinRevision
}

// parseKeep decodes keep strictly: null, {"tag":"Days","contents":n},
// {"tag":"Revisions","contents":n} or {"tag":"Forever"} (aeson's tagged
// encoding); n must be a positive integer.
func parseKeep(raw json.RawMessage) (*Keep, error) {
	if isNull(raw) {
		return nil, nil
	}
	var probe map[string]json.RawMessage
	if err := decodeValue(raw, &probe); err != nil || probe == nil {
		return nil, fmt.Errorf("keep: expected null or an object with a tag, got %s", abbreviate(raw))
	}
	tagRaw, ok := probe["tag"]
	if !ok {
		return nil, errors.New("keep: missing field \"tag\"")
	}
	tag, err := object{"tag": tagRaw}.str("tag")
	if err != nil {
		return nil, fmt.Errorf("keep: %w", err)
	}
	switch tag {
	case "Forever":
		if _, err := decodeObject(raw, "keep", "tag"); err != nil {
			return nil, err
		}
		return &Keep{Tag: tag}, nil
	case "Days", "Revisions":
		o, err := decodeObject(raw, "keep", "tag", "contents")
		if err != nil {
			return nil, err
		}
		n, err := o.integer("contents")
		if err != nil {
			return nil, fmt.Errorf("keep: %w", err)
		}
		if n < 1 || n > 1<<31-1 {
			return nil, fmt.Errorf("keep: contents must be a positive integer, got %d", n)
		}
		return &Keep{Tag: tag, Contents: int(n)}, nil
	default:
		return nil, fmt.Errorf("keep: unknown tag %q (want Days, Revisions or Forever)", tag)
	}
}

// keepJSON renders a Keep in aeson's tagged form (null for nil).
func keepJSON(k *Keep) any {
	if k == nil {
		return nil
	}
	if k.Tag == "Forever" {
		return map[string]any{"tag": k.Tag}
	}
	return map[string]any{"tag": k.Tag, "contents": k.Contents}
}

// handlePinCreate adds a revision to a pin: POST /cache/{name}/pin with
// {name, storePath, artifacts, keep}. The store path must be in the cache
// with its closure complete, else 400.
func (s *Server) handlePinCreate(w http.ResponseWriter, r *http.Request) {
	c, _ := s.authorize(w, r, permWrite)
	if c == nil {
		return
	}
	body, ok := s.jsonBody(w, r)
	if !ok {
		return
	}
	o, err := decodeObject(body, "request body", "name", "storePath", "artifacts", "keep")
	if err != nil {
		s.reject(w, r, http.StatusBadRequest, "%v", err)
		return
	}
	name, err := o.str("name")
	if err == nil && (strings.TrimSpace(name) == "" || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f })) {
		err = fmt.Errorf("field \"name\": a pin name must be non-empty printable text, got %q", name)
	}
	if err != nil {
		s.reject(w, r, http.StatusBadRequest, "%v", err)
		return
	}
	storePath, err := o.str("storePath")
	if err == nil {
		rest, ok := strings.CutPrefix(storePath, storeDir+"/")
		if !ok {
			err = fmt.Errorf("field \"storePath\": want a full path %s/<hash>-<name>, got %q", storeDir, storePath)
		} else if berr := checkBaseName(rest); berr != nil {
			err = fmt.Errorf("field \"storePath\" %q: %w", storePath, berr)
		}
	}
	if err != nil {
		s.reject(w, r, http.StatusBadRequest, "%v", err)
		return
	}
	artifacts, err := o.strList("artifacts")
	if err != nil {
		s.reject(w, r, http.StatusBadRequest, "%v", err)
		return
	}
	keep, err := parseKeep(o["keep"])
	if err != nil {
		s.reject(w, r, http.StatusBadRequest, "%v", err)
		return
	}

	hash := strings.TrimPrefix(storePath, storeDir+"/")[:32]
	s.mu.Lock()
	e := c.narinfos[hash]
	switch {
	case e == nil || e.storePath() != storePath:
		s.mu.Unlock()
		s.reject(w, r, http.StatusBadRequest, "Store path %s is not in binary cache %s; push it before pinning", storePath, c.name)
		return
	case !c.isCompleteLocked(hash):
		s.mu.Unlock()
		s.reject(w, r, http.StatusBadRequest, "Store path %s is in binary cache %s but its closure is incomplete; push its references before pinning", storePath, c.name)
		return
	}
	now := s.now().UTC()
	p := c.pins[name]
	if p == nil {
		p = &pinState{name: name, createdOn: now}
		c.pins[name] = p
	}
	p.keep = keep
	p.revisions = append(p.revisions, PinRevision{StorePath: storePath, Artifacts: artifacts, Keep: keep, CreatedOn: now})
	p.prune(now)
	s.stats.PinsCreated++
	s.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// prune applies the pin's keep policy; the newest revision always stays.
func (p *pinState) prune(now time.Time) {
	if p.keep == nil || len(p.revisions) <= 1 {
		return
	}
	switch p.keep.Tag {
	case "Revisions":
		if len(p.revisions) > p.keep.Contents {
			p.revisions = append([]PinRevision(nil), p.revisions[len(p.revisions)-p.keep.Contents:]...)
		}
	case "Days":
		cutoff := now.Add(-time.Duration(p.keep.Contents) * 24 * time.Hour)
		kept := p.revisions[:0:0]
		for i, rev := range p.revisions {
			if i == len(p.revisions)-1 || !rev.CreatedOn.Before(cutoff) {
				kept = append(kept, rev)
			}
		}
		p.revisions = kept
	}
}

// pinRevisionJSON is lastRevision in the pin list.
type pinRevisionJSON struct {
	StorePath string   `json:"storePath"`
	Artifacts []string `json:"artifacts"`
	CreatedOn string   `json:"createdOn"`
}

// pinJSON is one element of GET /cache/{name}/pin (as read by create-pin-refs and kup).
type pinJSON struct {
	Name         string          `json:"name"`
	CreatedOn    string          `json:"createdOn"`
	Keep         any             `json:"keep"`
	LastRevision pinRevisionJSON `json:"lastRevision"`
}

// formatTime renders a time the way aeson renders UTCTime.
func formatTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000000Z")
}

// handlePinList answers GET /cache/{name}/pin, sorted by pin name.
func (s *Server) handlePinList(w http.ResponseWriter, r *http.Request) {
	c, _ := s.authorize(w, r, permRead)
	if c == nil {
		return
	}
	s.mu.Lock()
	out := make([]pinJSON, 0, len(c.pins))
	for _, p := range c.pins {
		last := p.revisions[len(p.revisions)-1]
		out = append(out, pinJSON{
			Name:      p.name,
			CreatedOn: formatTime(p.createdOn),
			Keep:      keepJSON(p.keep),
			LastRevision: pinRevisionJSON{
				StorePath: last.StorePath,
				Artifacts: append([]string{}, last.Artifacts...),
				CreatedOn: formatTime(last.CreatedOn),
			},
		})
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	writeJSON(w, out)
}

// Pins returns cache name's pins with their retained revisions, sorted by name.
func (s *Server) Pins(name string) []Pin {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.caches[name]
	if c == nil {
		return nil
	}
	out := make([]Pin, 0, len(c.pins))
	for _, p := range c.pins {
		revs := make([]PinRevision, len(p.revisions))
		for i, rev := range p.revisions {
			rev.Artifacts = append([]string(nil), rev.Artifacts...)
			revs[i] = rev
		}
		out = append(out, Pin{Name: p.name, CreatedOn: p.createdOn, Keep: p.keep, Revisions: revs})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
