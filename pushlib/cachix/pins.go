package cachix

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/cachix-select/cachix-select/pushlib/backend"
)

// keepJSON is a pin retention policy in aeson's tagged-object form (§3):
// {"tag":"Days","contents":3}, {"tag":"Revisions","contents":10},
// {"tag":"Forever"}.
type keepJSON struct {
	Tag      string `json:"tag"`
	Contents *int   `json:"contents,omitempty"`
}

// pinCreate is the body of POST /cache/NAME/pin (§4.12).
type pinCreate struct {
	Name      string    `json:"name"`
	StorePath string    `json:"storePath"`
	Artifacts []string  `json:"artifacts"`
	Keep      *keepJSON `json:"keep"`
}

// encodeKeep maps a backend.Keep onto the wire form; nil stays null (the
// cache keeps every revision).
func encodeKeep(k *backend.Keep) (*keepJSON, error) {
	if k == nil {
		return nil, nil
	}
	if err := k.Validate(); err != nil {
		return nil, err
	}
	v := k.Value
	switch k.Kind {
	case backend.KeepRevisions:
		return &keepJSON{Tag: "Revisions", Contents: &v}, nil
	case backend.KeepDays:
		return &keepJSON{Tag: "Days", Contents: &v}, nil
	}
	return &keepJSON{Tag: "Forever"}, nil
}

// decodeKeep maps the wire form back; an unknown tag is kept lower-cased
// so that a listing never fails on a policy added later.
func decodeKeep(k *keepJSON) *backend.Keep {
	if k == nil {
		return nil
	}
	out := &backend.Keep{Kind: backend.KeepKind(strings.ToLower(k.Tag))}
	if k.Contents != nil {
		out.Value = *k.Contents
	}
	return out
}

// CreatePin pins a store path under a name (§4.12). It needs an auth token;
// the signing key plays no part. The path is not pushed.
func (b *Backend) CreatePin(ctx context.Context, pin backend.Pin) error {
	if b.c.token == "" {
		return &cacheError{
			msg:      fmt.Sprintf("pinning in cache %s needs an auth token (give one with %s)", b.name, tokenSources),
			sentinel: backend.ErrUnauthorized,
		}
	}
	if strings.TrimSpace(pin.Name) == "" {
		return fmt.Errorf("pinning %s: the pin has no name", pin.StorePath)
	}
	if _, err := parseStorePath(pin.StorePath); err != nil {
		return fmt.Errorf("pinning %s as %s: %w", pin.StorePath, pin.Name, err)
	}
	keep, err := encodeKeep(pin.Keep)
	if err != nil {
		return fmt.Errorf("pinning %s as %s: %w", pin.StorePath, pin.Name, err)
	}
	artifacts := pin.Artifacts
	if artifacts == nil {
		artifacts = []string{}
	}
	body := pinCreate{Name: pin.Name, StorePath: pin.StorePath, Artifacts: artifacts, Keep: keep}
	op := fmt.Sprintf("pinning %s as %s in cache %s", pin.StorePath, pin.Name, b.name)
	r, err := b.c.api(ctx, http.MethodPost, b.cachePath("/pin"), nil, body)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if !r.ok() {
		if r.status == http.StatusBadRequest {
			herr := b.httpError(op, r)
			return &cacheError{msg: herr.Error(), sentinel: backend.ErrRejected, cause: herr}
		}
		return b.cacheStatusError(op, r, true)
	}
	return nil
}

// pinJSON is one element of the pin listing on the wire.
type pinJSON struct {
	Name         string    `json:"name"`
	CreatedOn    string    `json:"createdOn"`
	Keep         *keepJSON `json:"keep"`
	LastRevision *struct {
		StorePath string   `json:"storePath"`
		Artifacts []string `json:"artifacts"`
		CreatedOn string   `json:"createdOn"`
	} `json:"lastRevision"`
}

// ListPins lists the cache's pins with their newest revisions. It works
// without a token for public caches. The endpoint is not in the published
// API type of the cachix client (§4.1, §9): its shape here (a JSON array
// of pins with their last revision) is an assumption.
func (b *Backend) ListPins(ctx context.Context) ([]backend.PinInfo, error) {
	op := "listing the pins of cache " + b.name
	r, err := b.c.api(ctx, http.MethodGet, b.cachePath("/pin"), nil, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if !r.ok() {
		return nil, b.cacheStatusError(op, r, false)
	}
	var raw []pinJSON
	if err := json.Unmarshal(r.body, &raw); err != nil {
		return nil, fmt.Errorf("%s: decoding the answer: %w", op, err)
	}
	pins := make([]backend.PinInfo, 0, len(raw))
	for _, p := range raw {
		pi := backend.PinInfo{Name: p.Name, CreatedOn: p.CreatedOn, Keep: decodeKeep(p.Keep)}
		if lr := p.LastRevision; lr != nil {
			pi.LastRevision = &backend.PinRevision{StorePath: lr.StorePath, Artifacts: lr.Artifacts, CreatedOn: lr.CreatedOn}
		}
		pins = append(pins, pi)
	}
	return pins, nil
}

// SubstituterURL is where Nix substitutes the cache from: the cache's URI.
// When the cache cannot be asked, it is https://NAME.cachix.org on
// cachix.org's own API host; on another host there is no telling, and the
// error says why.
func (b *Backend) SubstituterURL(ctx context.Context) (string, error) {
	info, err := b.CacheInfo(ctx)
	switch {
	case err == nil && info.URI != "":
		return info.URI, nil
	case err == nil:
		err = fmt.Errorf("reading cache %s: the answer names no uri", b.name)
	}
	if b.c.base.Host == defaultHost {
		return "https://" + b.name + ".cachix.org", nil
	}
	return "", err
}

// defaultHost is cachix.org's API host, whose caches are served at
// https://NAME.cachix.org.
const defaultHost = "cachix.org"
