package cachix_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/nix-community/go-nix/pkg/nixbase32"
	"github.com/ulikunitz/xz"

	"github.com/cachix-select/cachix-select/pushlib/cachix"
	"github.com/cachix-select/cachix-select/pushlib/narstream"
	"github.com/cachix-select/cachix-select/pushlib/store"
)

// nixConfig lets nix run as root without a daemon or substituters.
const nixConfig = "build-users-group =\nsubstituters =\nexperimental-features = nix-command flakes\nsandbox = false"

// nixEval evaluates expr to a string with the real nix, or skips the test.
func nixEval(t *testing.T, expr string) string {
	t.Helper()
	if _, err := exec.LookPath("nix"); err != nil {
		t.Skip("nix is not installed")
	}
	cmd := exec.CommandContext(t.Context(), "nix", "eval", "--raw", "--expr", expr)
	cmd.Env = append(os.Environ(), "NIX_CONFIG="+nixConfig)
	out, err := cmd.Output()
	if err != nil {
		t.Skipf("nix eval does not work here: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// TestRealStorePath pushes a real store path through narstream.Stream and
// checks what the fake Cachix received: the parts decompress to a NAR
// whose hash is cNarHash (the §10 NAR of "hello\n" for the referenced
// file), cFileHash/cFileSize describe the uploaded bytes, and cSig
// verifies against the public key over the fingerprint.
func TestRealStorePath(t *testing.T) {
	t.Parallel()
	hello := nixEval(t, `builtins.toFile "hello" "hello\n"`)
	user := nixEval(t, `builtins.toFile "uses-hello" "${builtins.toFile "hello" "hello\n"}"`)
	infos, err := store.New().Query(t.Context(), []string{hello, user})
	if err != nil {
		t.Fatal(err)
	}
	if got := infos[hello].NarHashString(); got != "sha256:"+vectorNarHash {
		t.Fatalf("NAR hash of hello is %s, want the §10 vector", got)
	}
	for _, method := range []narstream.Method{narstream.Zstd, narstream.XZ} {
		t.Run(string(method), func(t *testing.T) {
			t.Parallel()
			for _, p := range []string{hello, user} {
				f := newFakeCachix(t)
				key := vectorKeyParsed(t)
				b := newBackend(t, f.srv.URL, func(o *cachix.Options) { o.SigningKey = key })
				info := infos[p]
				c := narstream.Compression{Method: method, Level: 2}
				pend, err := b.Upload(t.Context(), info, c, func(ctx context.Context, w io.Writer) (narstream.Result, error) {
					return narstream.Stream(ctx, info, c, w, nil)
				})
				if err != nil {
					t.Fatal(err)
				}
				if err := pend.Commit(t.Context()); err != nil {
					t.Fatal(err)
				}
				checkReceived(t, f, info, method)
			}
		})
	}
}

// checkReceived verifies the uploaded bytes and the narinfo against info.
func checkReceived(t *testing.T, f *fakeCachix, info *store.PathInfo, method narstream.Method) {
	t.Helper()
	var sent struct {
		Parts []struct {
			PartNumber int `json:"partNumber"`
		} `json:"parts"`
		NarInfoCreate struct {
			CStoreHash, CStoreSuffix, CNarHash, CFileHash, CDeriver string
			CNarSize, CFileSize                                     uint64
			CReferences                                             []string
			CSig                                                    *string
		} `json:"narInfoCreate"`
	}
	if err := json.Unmarshal(f.completeReq, &sent); err != nil {
		t.Fatal(err)
	}
	var file []byte
	for _, p := range sent.Parts {
		file = append(file, f.parts[p.PartNumber]...)
	}
	n := sent.NarInfoCreate
	sum := sha256.Sum256(file)
	if n.CFileHash != hex.EncodeToString(sum[:]) || n.CFileSize != uint64(len(file)) {
		t.Errorf("cFileHash/cFileSize %s/%d do not describe the %d uploaded bytes", n.CFileHash, n.CFileSize, len(file))
	}
	var nar []byte
	switch method {
	case narstream.Zstd:
		dec, err := zstd.NewReader(bytes.NewReader(file))
		if err != nil {
			t.Fatal(err)
		}
		defer dec.Close()
		if nar, err = io.ReadAll(dec); err != nil {
			t.Fatal(err)
		}
	case narstream.XZ:
		r, err := xz.NewReader(bytes.NewReader(file))
		if err != nil {
			t.Fatal(err)
		}
		if nar, err = io.ReadAll(r); err != nil {
			t.Fatal(err)
		}
	}
	narSum := sha256.Sum256(nar)
	if got := "sha256:" + nixbase32.EncodeToString(narSum[:]); got != n.CNarHash || n.CNarHash != info.NarHashString() {
		t.Errorf("decompressed NAR hashes to %s; cNarHash %s; Nix says %s", got, n.CNarHash, info.NarHashString())
	}
	if n.CNarSize != uint64(len(nar)) || n.CNarSize != info.NarSize {
		t.Errorf("cNarSize %d, NAR %d bytes, Nix says %d", n.CNarSize, len(nar), info.NarSize)
	}
	base := strings.TrimPrefix(info.Path, "/nix/store/")
	if n.CStoreHash+"-"+n.CStoreSuffix != base || len(n.CStoreHash) != 32 {
		t.Errorf("cStoreHash/cStoreSuffix %q/%q do not split %s", n.CStoreHash, n.CStoreSuffix, base)
	}
	if strings.Join(n.CReferences, " ") != strings.Join(info.ReferenceNames(), " ") {
		t.Errorf("cReferences %v, want %v", n.CReferences, info.ReferenceNames())
	}
	if n.CDeriver != "unknown-deriver" {
		t.Errorf("cDeriver %q, want unknown-deriver (toFile has no deriver)", n.CDeriver)
	}
	if n.CSig == nil {
		t.Fatal("cSig is null with a signing key")
	}
	sig, err := base64.StdEncoding.DecodeString(*n.CSig)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := base64.StdEncoding.DecodeString(vectorKeyParsed(t).PublicKeyBare())
	if !ed25519.Verify(pub, []byte(info.Fingerprint()), sig) {
		t.Errorf("cSig does not verify over %q", info.Fingerprint())
	}
}
