package cachixserver

import (
	"fmt"
	"net/http"
	"strings"
)

// callerToken extracts the token a request presents: "Bearer <token>" as
// the Cachix client sends it, or HTTP Basic with the token as password as
// Nix sends it from a netrc entry. An empty token ("Bearer ", which the
// official client sends when it has none) counts as no token. Any other
// Authorization value is a presented but invalid token.
func callerToken(r *http.Request) (token string, presented bool) {
	h := strings.TrimSpace(r.Header.Get("Authorization"))
	if h == "" {
		return "", false
	}
	// HTTP servers strip the trailing space of "Bearer ", leaving "Bearer".
	scheme, rest, _ := strings.Cut(h, " ")
	if strings.EqualFold(scheme, "Bearer") {
		rest = strings.TrimSpace(rest)
		return rest, rest != ""
	}
	if _, pass, ok := r.BasicAuth(); ok {
		return pass, pass != ""
	}
	// An unparseable header: something was presented, and it is no token we know.
	return "\x00invalid", true
}

// unauthorizedMessage is Cachix's observed 401 body.
func unauthorizedMessage(name string) string {
	return fmt.Sprintf("Binary cache %s doesn't exist or you're not authorized to access. "+
		"Please check the name for typos and/or provide an auth token. "+
		"Contact support on https://cachix.org if you're stuck!", name)
}

// authorize looks up cache name and checks the caller may act on it with
// permission need. On failure it has already answered (401/404) and
// returns nil. The returned permission is the caller's effective one.
//
// Rules: an unknown cache is 404 for a caller presenting a token the
// server knows and 401 otherwise; a presented unknown token is always 401;
// public caches allow reads without a token; writes need a write token.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, need permission) (*cache, permission) {
	name := r.PathValue("name")
	token, presented := callerToken(r)

	s.mu.Lock()
	c := s.caches[name]
	known := presented && s.tokens[token]
	var have permission
	if c != nil {
		if presented {
			have = c.perms[token]
		}
		if have == permNone && c.public && !presented {
			have = permRead
		}
		if have == permNone && c.public && known {
			have = permRead
		}
	}
	switch {
	case c == nil && known:
		s.stats.NotFoundCaches++
	case c == nil || have < need:
		s.stats.AuthFailures++
	}
	s.mu.Unlock()

	switch {
	case c == nil && known:
		s.logf("%s %s: cache %q does not exist", r.Method, r.URL.Path, name)
		writeText(w, http.StatusNotFound, fmt.Sprintf("Binary cache %s does not exist.", name))
		return nil, permNone
	case c == nil || have < need:
		s.logf("%s %s: unauthorised for cache %q (need %s, have %s)", r.Method, r.URL.Path, name, need, have)
		writeText(w, http.StatusUnauthorized, unauthorizedMessage(name))
		return nil, permNone
	}
	return c, have
}
