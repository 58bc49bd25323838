package cachix

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"sync"

	"github.com/hashicorp/go-retryablehttp"
)

// apiClient speaks HTTP to the Cachix API and to the storage URLs it hands
// out, under the retry policy of `cachix push`.
type apiClient struct {
	// base is host + "/api/v1", without a trailing slash.
	base *url.URL
	// token is the bearer token, or "" for none.
	token     string
	userAgent string
	http      *http.Client
	policy    RetryPolicy
	logger    zerologAdapter
	scrub     func(string) string
	// failFast makes a connection failure final while a host has not
	// answered once (see Options.FailFast).
	failFast bool

	// reached holds the hosts that answered at least once; announced the
	// hosts whose trouble was already reported (both host → struct{}).
	reached, announced sync.Map
}

// jsonContentType is what Cachix's Servant API declares for JSON bodies.
const jsonContentType = "application/json;charset=utf-8"

// maxResponseBody bounds how much of a response is read into memory
// (the largest legitimate answers are missing-hash lists of ~1 MB).
const maxResponseBody = 64 << 20

// response is a fully read HTTP answer.
type response struct {
	status   int
	header   http.Header
	body     []byte
	attempts int
}

// ok reports a 2xx status, which is all Servant clients check.
func (r *response) ok() bool { return r.status >= 200 && r.status <= 299 }

// apiURL builds base + path (whose segments the caller escaped) + query.
func (c *apiClient) apiURL(path string, query url.Values) string {
	u := *c.base
	u.RawPath = c.base.EscapedPath() + path
	if p, err := url.PathUnescape(u.RawPath); err == nil {
		u.Path = p
	}
	if len(query) > 0 {
		u.RawQuery = query.Encode()
	}
	return u.String()
}

// api sends a request to the Cachix API: JSON in (if in is not nil), the
// bearer token when there is one, and the whole answer read back.
func (c *apiClient) api(ctx context.Context, method, path string, query url.Values, in any) (*response, error) {
	var body any
	h := http.Header{}
	h.Set("Accept", "application/json")
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("encoding request body: %w", err)
		}
		body = b
		h.Set("Content-Type", jsonContentType)
	}
	if c.token != "" {
		h.Set("Authorization", "Bearer "+c.token)
	}
	return c.do(ctx, method, c.apiURL(path, query), body, h)
}

// do sends one logical request, retrying it under the policy. body must be
// nil, a []byte or a retryablehttp.ReaderFunc so every attempt can rebuild
// it. Transport failures come back as *NetworkError, cancellation as the
// context's error; any HTTP status is returned as a response.
func (c *apiClient) do(ctx context.Context, method, rawURL string, body any, h http.Header) (*response, error) {
	req, err := retryablehttp.NewRequestWithContext(ctx, method, rawURL, body)
	if err != nil {
		return nil, fmt.Errorf("building %s request: %s", method, c.scrub(err.Error()))
	}
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", c.userAgent)

	st := &retryState{policy: c.policy, client: c, host: req.URL.Host}
	rc := &retryablehttp.Client{
		HTTPClient:   c.http,
		Logger:       c.logger,
		RetryMax:     math.MaxInt32,
		CheckRetry:   st.check,
		Backoff:      st.wait,
		ErrorHandler: closeAndFail,
	}
	resp, err := rc.Do(req)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return nil, err
		}
		return nil, &NetworkError{Host: req.URL.Host, Attempts: st.attempts, Elapsed: st.elapsed(),
			Unreachable: st.unreachable, Err: transportCause(err, c.scrub)}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		return nil, &NetworkError{Host: req.URL.Host, Attempts: st.attempts,
			Err: fmt.Errorf("reading the response: %w", transportCause(err, c.scrub))}
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: data, attempts: st.attempts}, nil
}

// closeAndFail is go-retryablehttp's ErrorHandler: it releases the last
// response, if any, and passes the error on unchanged (the default handler
// would prepend the full URL, which may hold a presigned signature).
func closeAndFail(resp *http.Response, err error, _ int) (*http.Response, error) {
	if resp != nil && resp.Body != nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		_ = resp.Body.Close()
	}
	return nil, err
}

// transportCause strips the URL from a transport error (it may carry a
// presigned query string) and keeps the cause, scrubbed.
func transportCause(err error, scrub func(string) string) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	msg := scrub(err.Error())
	if msg == err.Error() {
		return err
	}
	return errors.New(msg)
}

// bodyReader is a part's bytes handed to one HTTP attempt. It counts itself
// open until the transport closes it, so that the part's buffer is only
// reused once no attempt can still be reading it.
type bodyReader struct {
	*bytes.Reader
	once   sync.Once
	closed func()
}

// Close marks this attempt's reader as finished (once).
func (b *bodyReader) Close() error {
	b.once.Do(b.closed)
	return nil
}

// escape escapes one path segment.
func escape(s string) string { return url.PathEscape(s) }
