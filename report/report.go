// Package report encrypts SLA reports for the tenants that pull them
// (DESIGN §5): a JWE in compact serialization with "alg":"dir",
// "enc":"A256GCM", "cty":"application/json" and a "kid" naming the tenant's
// report key, so keys can rotate while old reports stay readable.
//
// The package only encrypts bytes; the API builds the JSON document. The
// JOSE framing is go-jose's. Decrypt accepts nothing but that one
// algorithm pair in compact form, and tells a token it cannot parse
// (ErrMalformed), one it will not accept (ErrUnsupported), one whose key it
// does not hold (ErrUnknownKey) and one that was tampered with or sealed
// under another key (ErrDecrypt) apart.
package report

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
)

// MediaType is the Content-Type of an encrypted report (RFC 7516 §9).
const MediaType = "application/jose"

// ContentType is the "cty" of the plaintext.
const ContentType = "application/json"

const (
	algDir    = jose.DIRECT
	encA256GC = jose.A256GCM
	ivSize    = 12
	tagSize   = 16
)

// Errors Decrypt, DecryptFile and ParseJWK wrap; test with errors.Is.
var (
	// ErrMalformed: not a JWE in compact serialization (a JWS, the JSON
	// serialization, bad base64, a header that is not JSON, ...).
	ErrMalformed = errors.New("report: malformed token")
	// ErrUnsupported: a well-formed JWE with an algorithm, encryption or
	// header this package does not accept (anything but dir + A256GCM,
	// compression, critical extensions).
	ErrUnsupported = errors.New("report: unsupported token")
	// ErrUnknownKey: the token's kid names no key the caller holds.
	ErrUnknownKey = errors.New("report: unknown key")
	// ErrDecrypt: authentication failed: the token was altered, or sealed
	// under a different key with the same kid.
	ErrDecrypt = errors.New("report: decryption failed")
	// ErrInvalidKey: a key without an id, of the wrong size, or a JWK that
	// is not a 256-bit "oct" key for "dir".
	ErrInvalidKey = errors.New("report: invalid key")
)

// Header is the protected header of a report token.
type Header struct {
	KeyID       string // kid
	Algorithm   string // alg, always "dir"
	Encryption  string // enc, always "A256GCM"
	ContentType string // cty, "application/json" for reports Encrypt makes
}

// KeyLookup finds a key by its id. Keep retired keys in it for as long as
// reports sealed under them must stay readable.
type KeyLookup func(kid string) (Key, bool)

// Keys returns a KeyLookup over a fixed list of keys.
func Keys(keys ...Key) KeyLookup {
	return func(kid string) (Key, bool) {
		for _, k := range keys {
			if k.ID == kid {
				return k, true
			}
		}
		return Key{}, false
	}
}

// Encrypt seals plaintext (the JSON report) under k and returns the JWE
// compact serialization.
func Encrypt(plaintext []byte, k Key) (string, error) {
	if err := k.validate(); err != nil {
		return "", err
	}
	enc, err := jose.NewEncrypter(encA256GC,
		jose.Recipient{Algorithm: algDir, Key: []byte(k.Secret), KeyID: k.ID},
		(&jose.EncrypterOptions{}).WithContentType(ContentType))
	if err != nil {
		return "", fmt.Errorf("report: %w", err)
	}
	obj, err := enc.Encrypt(plaintext)
	if err != nil {
		return "", fmt.Errorf("report: encrypting: %w", err)
	}
	token, err := obj.CompactSerialize()
	if err != nil {
		return "", fmt.Errorf("report: serializing: %w", err)
	}
	return token, nil
}

// rawHeader is the protected header as decoded for the checks Decrypt makes
// before go-jose parses the token again.
type rawHeader struct {
	Alg  *string         `json:"alg"`
	Enc  *string         `json:"enc"`
	Kid  *string         `json:"kid"`
	Cty  string          `json:"cty"`
	Zip  json.RawMessage `json:"zip"`
	Crit json.RawMessage `json:"crit"`
}

// Decrypt opens a report token with the key its kid names. It accepts only
// the compact serialization with "alg":"dir" and "enc":"A256GCM"; every
// part must be canonical base64url, so no two strings open as the same
// token.
func Decrypt(token string, keys KeyLookup) ([]byte, Header, error) {
	token = strings.TrimSpace(token)
	if strings.HasPrefix(token, "{") {
		return nil, Header{}, fmt.Errorf("%w: JSON serialization; want compact", ErrMalformed)
	}
	for _, c := range token {
		if !base64urlOrDot(c) {
			return nil, Header{}, fmt.Errorf("%w: character %q outside base64url", ErrMalformed, c)
		}
	}
	parts := strings.Split(token, ".")
	switch len(parts) {
	case 5:
	case 3:
		return nil, Header{}, fmt.Errorf("%w: a JWS (3 parts), not a JWE", ErrMalformed)
	default:
		return nil, Header{}, fmt.Errorf("%w: %d parts, want 5", ErrMalformed, len(parts))
	}
	names := [5]string{"header", "encrypted key", "iv", "ciphertext", "tag"}
	var raw [5][]byte
	for i, p := range parts {
		b, err := base64.RawURLEncoding.Strict().DecodeString(p)
		if err != nil {
			return nil, Header{}, fmt.Errorf("%w: %s is not canonical base64url", ErrMalformed, names[i])
		}
		raw[i] = b
	}

	var rh rawHeader
	dec := json.NewDecoder(bytes.NewReader(raw[0]))
	if err := dec.Decode(&rh); err != nil || dec.More() {
		return nil, Header{}, fmt.Errorf("%w: header is not a JSON object", ErrMalformed)
	}
	switch {
	case rh.Alg == nil:
		return nil, Header{}, fmt.Errorf("%w: header has no alg", ErrMalformed)
	case rh.Enc == nil:
		return nil, Header{}, fmt.Errorf("%w: header has no enc", ErrMalformed)
	case *rh.Alg != string(algDir):
		return nil, Header{}, fmt.Errorf("%w: alg %q; want %q", ErrUnsupported, *rh.Alg, algDir)
	case *rh.Enc != string(encA256GC):
		return nil, Header{}, fmt.Errorf("%w: enc %q; want %q", ErrUnsupported, *rh.Enc, encA256GC)
	case rh.Zip != nil:
		return nil, Header{}, fmt.Errorf("%w: compressed (zip)", ErrUnsupported)
	case rh.Crit != nil:
		return nil, Header{}, fmt.Errorf("%w: critical header extensions", ErrUnsupported)
	case rh.Kid == nil || *rh.Kid == "":
		return nil, Header{}, fmt.Errorf("%w: header has no kid", ErrMalformed)
	case len(raw[1]) != 0:
		return nil, Header{}, fmt.Errorf("%w: alg dir takes no encrypted key", ErrMalformed)
	case len(raw[2]) != ivSize:
		return nil, Header{}, fmt.Errorf("%w: iv is %d bytes, want %d", ErrMalformed, len(raw[2]), ivSize)
	case len(raw[4]) != tagSize:
		return nil, Header{}, fmt.Errorf("%w: tag is %d bytes, want %d", ErrMalformed, len(raw[4]), tagSize)
	}
	hdr := Header{KeyID: *rh.Kid, Algorithm: *rh.Alg, Encryption: *rh.Enc, ContentType: rh.Cty}

	if keys == nil {
		return nil, hdr, fmt.Errorf("%w: %q", ErrUnknownKey, hdr.KeyID)
	}
	k, ok := keys(hdr.KeyID)
	if !ok {
		return nil, hdr, fmt.Errorf("%w: %q", ErrUnknownKey, hdr.KeyID)
	}
	if len(k.Secret) != KeySize {
		return nil, hdr, fmt.Errorf("%w: key %s is %d bytes, want %d", ErrInvalidKey, k.ID, len(k.Secret), KeySize)
	}

	obj, err := jose.ParseEncryptedCompact(token,
		[]jose.KeyAlgorithm{algDir}, []jose.ContentEncryption{encA256GC})
	if err != nil {
		return nil, hdr, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	plaintext, err := obj.Decrypt([]byte(k.Secret))
	if err != nil {
		return nil, hdr, fmt.Errorf("%w: token %s", ErrDecrypt, hdr.KeyID)
	}
	return plaintext, hdr, nil
}

// DecryptFile opens a report token (surrounding white space ignored) with
// the key in keyFile: a JWK as Key.JWK writes it, or a JWK Set
// {"keys":[...]} holding current and retired keys. It is what
// `upwatch report decrypt --key-file` calls.
func DecryptFile(token []byte, keyFile string) ([]byte, error) {
	data, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("report: reading key file: %w", err)
	}
	keys, err := parseKeyFile(data)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", keyFile, err)
	}
	plaintext, _, err := Decrypt(string(token), Keys(keys...))
	return plaintext, err
}

func base64urlOrDot(c rune) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' ||
		c == '-' || c == '_' || c == '.'
}
