package report_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwe"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/report"
)

var (
	t0  = time.Date(2026, 10, 1, 12, 0, 0, 0, time.UTC)
	doc = []byte(`{"generated_at":"2026-10-01T12:00:00Z","tenant":"acme","targets":[{"name":"web","uptime":99.95}]}`)
)

func newKey(t *testing.T) report.Key {
	t.Helper()
	k, err := report.NewKey(t0)
	require.NoError(t, err)
	return k
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func unb64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	require.NoError(t, err)
	return b
}

func TestNewKey(t *testing.T) {
	a, b := newKey(t), newKey(t)
	require.Len(t, a.Secret, report.KeySize)
	require.True(t, strings.HasPrefix(a.ID, report.KeyIDPrefix), a.ID)
	require.Regexp(t, `^rk_[a-z2-7]{26}$`, a.ID)
	require.NotEqual(t, a.ID, b.ID)
	require.NotEqual(t, []byte(a.Secret), []byte(b.Secret))
	require.Equal(t, t0, a.CreatedAt)
}

func TestRoundTrip(t *testing.T) {
	k := newKey(t)
	token, err := report.Encrypt(doc, k)
	require.NoError(t, err)
	require.Len(t, strings.Split(token, "."), 5)

	var hdr map[string]any
	require.NoError(t, json.Unmarshal(unb64(t, strings.Split(token, ".")[0]), &hdr))
	require.Equal(t, map[string]any{"alg": "dir", "enc": "A256GCM", "kid": k.ID, "cty": "application/json"}, hdr)
	require.Empty(t, strings.Split(token, ".")[1], "dir has an empty encrypted key")

	got, h, err := report.Decrypt(token, report.Keys(k))
	require.NoError(t, err)
	require.Equal(t, doc, got)
	require.Equal(t, report.Header{KeyID: k.ID, Algorithm: "dir", Encryption: "A256GCM", ContentType: "application/json"}, h)

	// Two encryptions of the same document differ (fresh IV).
	again, err := report.Encrypt(doc, k)
	require.NoError(t, err)
	require.NotEqual(t, token, again)

	// Surrounding white space (a trailing newline in a file) is fine.
	got, _, err = report.Decrypt("\n "+token+"\n", report.Keys(k))
	require.NoError(t, err)
	require.Equal(t, doc, got)

	// An empty document round-trips too.
	token, err = report.Encrypt(nil, k)
	require.NoError(t, err)
	got, _, err = report.Decrypt(token, report.Keys(k))
	require.NoError(t, err)
	require.Empty(t, got)
}

func TestEncryptRejectsBadKeys(t *testing.T) {
	k := newKey(t)
	for name, bad := range map[string]report.Key{
		"no id":     {Secret: k.Secret},
		"odd id":    {ID: "rk 1/2", Secret: k.Secret},
		"short":     {ID: "rk_a", Secret: k.Secret[:16]},
		"no secret": {ID: "rk_a"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := report.Encrypt(doc, bad)
			require.ErrorIs(t, err, report.ErrInvalidKey)
			requireNoSecret(t, err.Error(), k)
		})
	}
}

// Our token opens with jwx, a JOSE library other than the one that
// encrypts, given nothing but the exported JWK.
func TestJWXDecryptsOurs(t *testing.T) {
	k := newKey(t)
	token, err := report.Encrypt(doc, k)
	require.NoError(t, err)
	export, err := k.JWK()
	require.NoError(t, err)

	key, err := jwk.ParseKey(export)
	require.NoError(t, err)
	kid, ok := key.KeyID()
	require.True(t, ok)
	require.Equal(t, k.ID, kid)

	set := jwk.NewSet()
	require.NoError(t, set.AddKey(key))
	got, err := jwe.Decrypt([]byte(token), jwe.WithKeySet(set))
	require.NoError(t, err)
	require.Equal(t, doc, got)

	got, err = jwe.Decrypt([]byte(token), jwe.WithKey(jwa.DIRECT(), []byte(k.Secret)))
	require.NoError(t, err)
	require.Equal(t, doc, got)

	msg, err := jwe.Parse([]byte(token))
	require.NoError(t, err)
	cty, ok := msg.ProtectedHeaders().ContentType()
	require.True(t, ok)
	require.Equal(t, "application/json", cty)
}

func jwxEncrypt(t *testing.T, plaintext []byte, alg jwa.KeyEncryptionAlgorithm, enc jwa.ContentEncryptionAlgorithm, kid string, key any) string {
	t.Helper()
	hdr := jwe.NewHeaders()
	require.NoError(t, hdr.Set(jwe.KeyIDKey, kid))
	require.NoError(t, hdr.Set(jwe.ContentTypeKey, "application/json"))
	token, err := jwe.Encrypt(plaintext,
		jwe.WithKey(alg, key),
		jwe.WithContentEncryption(enc),
		jwe.WithProtectedHeaders(hdr),
		jwe.WithCompact())
	require.NoError(t, err)
	return string(token)
}

// A report jwx encrypted with our exported key opens with ours.
func TestWeDecryptJWX(t *testing.T) {
	k := newKey(t)
	export, err := k.JWK()
	require.NoError(t, err)
	imported, err := report.ParseJWK(export)
	require.NoError(t, err)
	require.Equal(t, k.ID, imported.ID)
	require.Equal(t, []byte(k.Secret), []byte(imported.Secret))

	token := jwxEncrypt(t, doc, jwa.DIRECT(), jwa.A256GCM(), k.ID, []byte(k.Secret))
	got, h, err := report.Decrypt(token, report.Keys(imported))
	require.NoError(t, err)
	require.Equal(t, doc, got)
	require.Equal(t, k.ID, h.KeyID)
}

// flip returns token with one byte of its decoded part i changed (for the
// empty encrypted key of "dir", one byte added), canonically re-encoded.
func flip(t *testing.T, token string, i int) string {
	parts := strings.Split(token, ".")
	b := unb64(t, parts[i])
	if len(b) == 0 {
		b = []byte{0}
	} else {
		b[len(b)/2] ^= 0x01
	}
	parts[i] = b64(b)
	return strings.Join(parts, ".")
}

func TestTamperedTokensRejected(t *testing.T) {
	k := newKey(t)
	token, err := report.Encrypt(doc, k)
	require.NoError(t, err)
	keys := report.Keys(k)

	for i, name := range []string{"header", "encrypted key", "iv", "ciphertext", "tag"} {
		t.Run("byte flipped in "+name, func(t *testing.T) {
			got, _, err := report.Decrypt(flip(t, token, i), keys)
			require.Error(t, err)
			require.Nil(t, got)
		})
	}
	for _, i := range []int{2, 3, 4} {
		t.Run(fmt.Sprintf("part %d flipped is a decryption failure", i), func(t *testing.T) {
			_, _, err := report.Decrypt(flip(t, token, i), keys)
			require.ErrorIs(t, err, report.ErrDecrypt)
		})
	}

	t.Run("protected header edited", func(t *testing.T) {
		// A well-formed header with the right alg, enc and kid but another
		// cty: the header is authenticated data, so the tag fails.
		parts := strings.Split(token, ".")
		h := strings.Replace(string(unb64(t, parts[0])), "application/json", "text/plain", 1)
		parts[0] = b64([]byte(h))
		_, _, err := report.Decrypt(strings.Join(parts, "."), keys)
		require.ErrorIs(t, err, report.ErrDecrypt)
	})

	t.Run("ciphertext truncated", func(t *testing.T) {
		parts := strings.Split(token, ".")
		parts[3] = b64(unb64(t, parts[3])[1:])
		_, _, err := report.Decrypt(strings.Join(parts, "."), keys)
		require.ErrorIs(t, err, report.ErrDecrypt)
	})

	t.Run("non-canonical base64 in the tag", func(t *testing.T) {
		// The last character of a 16-byte part carries 4 unused bits;
		// a lenient decoder would read the same tag.
		const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
		last := token[len(token)-1]
		other := alphabet[strings.IndexByte(alphabet, last)^1]
		_, _, err := report.Decrypt(token[:len(token)-1]+string(other), keys)
		require.ErrorIs(t, err, report.ErrMalformed)
	})

	t.Run("line break inside", func(t *testing.T) {
		_, _, err := report.Decrypt(token[:20]+"\n"+token[20:], keys)
		require.ErrorIs(t, err, report.ErrMalformed)
	})

	t.Run("tag and iv swapped with another report's", func(t *testing.T) {
		other, err := report.Encrypt(doc, k)
		require.NoError(t, err)
		p, q := strings.Split(token, "."), strings.Split(other, ".")
		p[2] = q[2]
		_, _, err = report.Decrypt(strings.Join(p, "."), keys)
		require.ErrorIs(t, err, report.ErrDecrypt)
	})
}

func TestWrongKey(t *testing.T) {
	k, other := newKey(t), newKey(t)
	token, err := report.Encrypt(doc, k)
	require.NoError(t, err)

	_, h, err := report.Decrypt(token, report.Keys(other))
	require.ErrorIs(t, err, report.ErrUnknownKey)
	require.Equal(t, k.ID, h.KeyID, "the header tells which key is missing")

	_, _, err = report.Decrypt(token, nil)
	require.ErrorIs(t, err, report.ErrUnknownKey)

	// A key under the right id but with other bytes.
	impostor := report.Key{ID: k.ID, Secret: other.Secret}
	_, _, err = report.Decrypt(token, report.Keys(impostor))
	require.ErrorIs(t, err, report.ErrDecrypt)
	requireNoSecret(t, err.Error(), k)
	requireNoSecret(t, err.Error(), other)

	// A lookup that hands back a broken key.
	broken := report.Key{ID: k.ID, Secret: k.Secret[:16]}
	_, _, err = report.Decrypt(token, report.Keys(broken))
	require.ErrorIs(t, err, report.ErrInvalidKey)
}

func TestRotatedKeyOpensOldReports(t *testing.T) {
	old := newKey(t)
	oldReport, err := report.Encrypt(doc, old)
	require.NoError(t, err)

	// Rotation: a new key becomes current, the old one is kept.
	current, err := report.NewKey(t0.Add(30 * 24 * time.Hour))
	require.NoError(t, err)
	newReport, err := report.Encrypt([]byte(`{"n":2}`), current)
	require.NoError(t, err)

	store := map[string]report.Key{old.ID: old, current.ID: current}
	lookup := func(kid string) (report.Key, bool) { k, ok := store[kid]; return k, ok }

	got, h, err := report.Decrypt(oldReport, lookup)
	require.NoError(t, err)
	require.Equal(t, doc, got)
	require.Equal(t, old.ID, h.KeyID)

	got, h, err = report.Decrypt(newReport, lookup)
	require.NoError(t, err)
	require.Equal(t, `{"n":2}`, string(got))
	require.Equal(t, current.ID, h.KeyID)

	// Once the old key is deleted, its reports stay closed.
	delete(store, old.ID)
	_, _, err = report.Decrypt(oldReport, lookup)
	require.ErrorIs(t, err, report.ErrUnknownKey)
}

func TestForeignTokensRejected(t *testing.T) {
	k := newKey(t)
	keys := report.Keys(k)
	good, err := report.Encrypt(doc, k)
	require.NoError(t, err)
	goodParts := strings.Split(good, ".")

	withHeader := func(h string) string {
		p := append([]string(nil), goodParts...)
		p[0] = b64([]byte(h))
		return strings.Join(p, ".")
	}

	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	wrapKey := make([]byte, 32)
	_, _ = rand.Read(wrapKey)
	a128 := make([]byte, 16)
	_, _ = rand.Read(a128)

	// JWE JSON serialization of a token that is otherwise fine.
	enc, err := jose.NewEncrypter(jose.A256GCM, jose.Recipient{Algorithm: jose.DIRECT, Key: []byte(k.Secret), KeyID: k.ID}, nil)
	require.NoError(t, err)
	obj, err := enc.Encrypt(doc)
	require.NoError(t, err)
	jsonSerialized := obj.FullSerialize()

	// A JWS (HS256) signed with the key's bytes.
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte(k.Secret)}, nil)
	require.NoError(t, err)
	jws, err := signer.Sign(doc)
	require.NoError(t, err)
	jwsCompact, err := jws.CompactSerialize()
	require.NoError(t, err)

	// Compressed with zip=DEF by go-jose under our own key.
	zipEnc, err := jose.NewEncrypter(jose.A256GCM,
		jose.Recipient{Algorithm: jose.DIRECT, Key: []byte(k.Secret), KeyID: k.ID},
		&jose.EncrypterOptions{Compression: jose.DEFLATE})
	require.NoError(t, err)
	zipObj, err := zipEnc.Encrypt(doc)
	require.NoError(t, err)
	zipped, err := zipObj.CompactSerialize()
	require.NoError(t, err)

	for _, tc := range []struct {
		name  string
		token string
		want  error
	}{
		{"alg none", withHeader(`{"alg":"none","enc":"A256GCM","kid":"` + k.ID + `"}`), report.ErrUnsupported},
		{"alg none, empty parts", b64([]byte(`{"alg":"none","enc":"A256GCM","kid":"`+k.ID+`"}`)) + "....", report.ErrUnsupported},
		{"RSA-OAEP (jwx)", jwxEncrypt(t, doc, jwa.RSA_OAEP_256(), jwa.A256GCM(), k.ID, &rsaKey.PublicKey), report.ErrUnsupported},
		{"A256KW (jwx)", jwxEncrypt(t, doc, jwa.A256KW(), jwa.A256GCM(), k.ID, wrapKey), report.ErrUnsupported},
		{"dir with A128GCM (jwx)", jwxEncrypt(t, doc, jwa.DIRECT(), jwa.A128GCM(), k.ID, a128), report.ErrUnsupported},
		{"dir with A256CBC-HS512 header", withHeader(`{"alg":"dir","enc":"A256CBC-HS512","kid":"` + k.ID + `"}`), report.ErrUnsupported},
		{"zip", zipped, report.ErrUnsupported},
		{"crit", withHeader(`{"alg":"dir","enc":"A256GCM","kid":"` + k.ID + `","crit":["exp"],"exp":1}`), report.ErrUnsupported},
		{"no kid", withHeader(`{"alg":"dir","enc":"A256GCM"}`), report.ErrMalformed},
		{"no alg", withHeader(`{"enc":"A256GCM","kid":"` + k.ID + `"}`), report.ErrMalformed},
		{"header not JSON", withHeader(`not json`), report.ErrMalformed},
		{"header is an array", withHeader(`[1]`), report.ErrMalformed},
		{"header with trailing data", withHeader(`{"alg":"dir","enc":"A256GCM","kid":"` + k.ID + `"}{}`), report.ErrMalformed},
		{"JSON serialization", jsonSerialized, report.ErrMalformed},
		{"JWS compact", jwsCompact, report.ErrMalformed},
		{"empty", "", report.ErrMalformed},
		{"six parts", good + ".AA", report.ErrMalformed},
		{"padding", good + "==", report.ErrMalformed},
		{"short iv", strings.Join([]string{goodParts[0], "", b64(make([]byte, 8)), goodParts[3], goodParts[4]}, "."), report.ErrMalformed},
		{"long tag", strings.Join([]string{goodParts[0], "", goodParts[2], goodParts[3], b64(make([]byte, 17))}, "."), report.ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, _, err := report.Decrypt(tc.token, keys)
			require.ErrorIs(t, err, tc.want)
			require.Nil(t, got)
			requireNoSecret(t, err.Error(), k)
		})
	}
}

func TestJWK(t *testing.T) {
	k := newKey(t)
	export, err := k.JWK()
	require.NoError(t, err)
	var m map[string]string
	require.NoError(t, json.Unmarshal(export, &m))
	require.Equal(t, map[string]string{
		"kty": "oct", "kid": k.ID, "alg": "dir", "use": "enc", "k": b64(k.Secret),
	}, m)

	// A key written by hand with no alg and no use is accepted.
	bare := fmt.Sprintf(`{"kty":"oct","kid":"other","k":%q}`, b64(k.Secret))
	got, err := report.ParseJWK([]byte(bare))
	require.NoError(t, err)
	require.Equal(t, "other", got.ID)

	secret := b64(k.Secret)
	for name, in := range map[string]string{
		"not JSON":  `{"kty":"oct","k":"` + secret,
		"RSA":       `{"kty":"RSA","kid":"a","k":"` + secret + `"}`,
		"A256KW":    `{"kty":"oct","kid":"a","alg":"A256KW","k":"` + secret + `"}`,
		"sig":       `{"kty":"oct","kid":"a","use":"sig","k":"` + secret + `"}`,
		"no kid":    `{"kty":"oct","k":"` + secret + `"}`,
		"short":     `{"kty":"oct","kid":"a","k":"` + b64(k.Secret[:16]) + `"}`,
		"std b64":   `{"kty":"oct","kid":"a","k":"` + base64.StdEncoding.EncodeToString(append([]byte{0xfb, 0xff}, k.Secret[2:]...)) + `"}`,
		"k not str": `{"kty":"oct","kid":"a","k":5}`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := report.ParseJWK([]byte(in))
			require.ErrorIs(t, err, report.ErrInvalidKey)
			requireNoSecret(t, err.Error(), k)
		})
	}
}

func TestDecryptFile(t *testing.T) {
	dir := t.TempDir()
	old, current := newKey(t), newKey(t)
	oldReport, err := report.Encrypt(doc, old)
	require.NoError(t, err)
	newReport, err := report.Encrypt([]byte(`{"n":2}`), current)
	require.NoError(t, err)

	single := filepath.Join(dir, "key.jwk")
	export, err := current.JWK()
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(single, append(export, '\n'), 0o600))

	got, err := report.DecryptFile([]byte(newReport+"\n"), single)
	require.NoError(t, err)
	require.Equal(t, `{"n":2}`, string(got))
	_, err = report.DecryptFile([]byte(oldReport), single)
	require.ErrorIs(t, err, report.ErrUnknownKey)

	// A JWK Set with the current and the retired key opens both.
	oldExport, err := old.JWK()
	require.NoError(t, err)
	set := filepath.Join(dir, "keys.jwks")
	require.NoError(t, os.WriteFile(set, []byte(`{"keys":[`+string(export)+`,`+string(oldExport)+`]}`), 0o600))
	got, err = report.DecryptFile([]byte(oldReport), set)
	require.NoError(t, err)
	require.Equal(t, doc, got)

	// jwx reads the same set file.
	jwks, err := jwk.ReadFile(set)
	require.NoError(t, err)
	got, err = jwe.Decrypt([]byte(oldReport), jwe.WithKeySet(jwks))
	require.NoError(t, err)
	require.Equal(t, doc, got)

	_, err = report.DecryptFile([]byte(newReport), filepath.Join(dir, "missing"))
	require.ErrorIs(t, err, os.ErrNotExist)

	bad := filepath.Join(dir, "bad.jwk")
	require.NoError(t, os.WriteFile(bad, []byte(`{"kty":"oct","kid":"x","k":"`+b64(current.Secret[:31])+`"}`), 0o600))
	_, err = report.DecryptFile([]byte(newReport), bad)
	require.ErrorIs(t, err, report.ErrInvalidKey)
	require.Contains(t, err.Error(), bad)
	requireNoSecret(t, err.Error(), current)

	emptySet := filepath.Join(dir, "empty.jwks")
	require.NoError(t, os.WriteFile(emptySet, []byte(`{"keys":[]}`), 0o600))
	_, err = report.DecryptFile([]byte(newReport), emptySet)
	require.Error(t, err)
}

// requireNoSecret fails if s shows k's secret in any common encoding.
func requireNoSecret(t *testing.T, s string, k report.Key) {
	t.Helper()
	raw := []byte(k.Secret)
	for _, enc := range []string{
		string(raw),
		hex.EncodeToString(raw),
		strings.ToUpper(hex.EncodeToString(raw)),
		base64.StdEncoding.EncodeToString(raw),
		base64.RawURLEncoding.EncodeToString(raw),
		fmt.Sprint([]byte(raw)),
		fmt.Sprintf("%q", raw),
		fmt.Sprintf("%#v", raw),
	} {
		require.NotContains(t, s, enc)
	}
	// A run of the first bytes as decimal, as %v of a []byte field shows them.
	require.NotContains(t, s, strings.Trim(fmt.Sprint(raw[:6]), "[]"))
}

func TestKeyNeverPrintsSecret(t *testing.T) {
	k := newKey(t)
	type holder struct {
		Key  report.Key
		Ptr  *report.Key
		Keys []report.Key
	}
	h := holder{Key: k, Ptr: &k, Keys: []report.Key{k}}

	var outputs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
		outputs = append(outputs,
			fmt.Sprintf(verb, k), fmt.Sprintf(verb, &k), fmt.Sprintf(verb, h),
			fmt.Sprintf(verb, k.Secret))
	}
	outputs = append(outputs, k.String(), k.GoString(), fmt.Sprint(k), fmt.Sprintln(k))

	for _, v := range []any{k, &k, h, k.Secret} {
		b, err := json.Marshal(v)
		require.NoError(t, err)
		outputs = append(outputs, string(b))
	}
	b, err := json.Marshal(k)
	require.NoError(t, err)
	require.JSONEq(t, `{"kid":"`+k.ID+`","created_at":"2026-10-01T12:00:00Z"}`, string(b))

	var buf bytes.Buffer
	for _, lg := range []*slog.Logger{
		slog.New(slog.NewTextHandler(&buf, nil)),
		slog.New(slog.NewJSONHandler(&buf, nil)),
	} {
		lg.Info("rotated", "key", k, "ptr", &k, "holder", h, "secret", k.Secret, slog.Any("any", k))
	}
	outputs = append(outputs, buf.String())
	require.Contains(t, buf.String(), k.ID)

	for _, out := range outputs {
		requireNoSecret(t, out, k)
	}
	require.Contains(t, fmt.Sprintf("%#v", k), report.Redacted)
	require.Contains(t, fmt.Sprintf("%v", k), k.ID)
}

func TestErrorsAreDistinct(t *testing.T) {
	all := []error{report.ErrMalformed, report.ErrUnsupported, report.ErrUnknownKey, report.ErrDecrypt, report.ErrInvalidKey}
	for i, a := range all {
		for j, b := range all {
			require.Equal(t, i == j, errors.Is(a, b))
		}
	}
}
