package report

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// KeySize is the length of a report key's secret in bytes (AES-256).
const KeySize = 32

// KeyIDPrefix starts every key id NewKey makes.
const KeyIDPrefix = "rk_"

// Redacted is what a key's secret shows instead of its value.
const Redacted = "<secret>"

// SecretBytes is key material. It prints, logs and marshals as "<secret>";
// convert it with []byte(s) only where the bytes are stored or used.
type SecretBytes []byte

// String never shows the value.
func (s SecretBytes) String() string {
	if len(s) == 0 {
		return ""
	}
	return Redacted
}

// GoString keeps %#v from printing the value.
func (s SecretBytes) GoString() string { return s.String() }

// Format keeps every fmt verb (%x, %q, %v, ...) from printing the value.
func (s SecretBytes) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(s.String())) }

// MarshalJSON never shows the value.
func (s SecretBytes) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// MarshalText never shows the value (encoding/xml, slog text keys, ...).
func (s SecretBytes) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// LogValue keeps log/slog from printing the value.
func (s SecretBytes) LogValue() slog.Value { return slog.StringValue(s.String()) }

// Key is a tenant's report key: 256 bits used directly as the A256GCM
// content encryption key (JWE "alg":"dir"). The secret never prints, logs
// or marshals; export it with JWK, which is meant to be shown once.
type Key struct {
	ID        string      // the JWE "kid"
	Secret    SecretBytes // KeySize bytes
	CreatedAt time.Time
}

// NewKey returns a random key created at now, with an id "rk_" followed by
// 26 lowercase base32 characters (128 random bits).
func NewKey(now time.Time) (Key, error) {
	secret := make([]byte, KeySize)
	if _, err := rand.Read(secret); err != nil {
		return Key{}, fmt.Errorf("report: generating key: %w", err)
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return Key{}, fmt.Errorf("report: generating key id: %w", err)
	}
	enc := base32.StdEncoding.WithPadding(base32.NoPadding)
	return Key{
		ID:        KeyIDPrefix + strings.ToLower(enc.EncodeToString(id)),
		Secret:    secret,
		CreatedAt: now,
	}, nil
}

// validate checks what Encrypt and Decrypt need. The error never shows
// the secret.
func (k Key) validate() error {
	if k.ID == "" {
		return fmt.Errorf("%w: key has no id", ErrInvalidKey)
	}
	if !validKeyID(k.ID) {
		return fmt.Errorf("%w: key id %q has characters outside [A-Za-z0-9._~-]", ErrInvalidKey, k.ID)
	}
	if len(k.Secret) != KeySize {
		return fmt.Errorf("%w: key %s is %d bytes, want %d", ErrInvalidKey, k.ID, len(k.Secret), KeySize)
	}
	return nil
}

// validKeyID reports whether id is non-empty, at most 128 characters and
// URL-safe, so it can sit in a header, a URL path and a log line as is.
func validKeyID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, c := range id {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-', c == '_', c == '.', c == '~':
		default:
			return false
		}
	}
	return true
}

// String shows the id and never the secret.
func (k Key) String() string {
	if k.CreatedAt.IsZero() {
		return fmt.Sprintf("report key %s", k.ID)
	}
	return fmt.Sprintf("report key %s (created %s)", k.ID, k.CreatedAt.UTC().Format(time.RFC3339))
}

// GoString keeps %#v from printing the secret.
func (k Key) GoString() string {
	return fmt.Sprintf("report.Key{ID: %q, Secret: %s, CreatedAt: %s}", k.ID, k.Secret.String(), k.CreatedAt.UTC().Format(time.RFC3339))
}

// Format keeps every fmt verb from printing the secret: %#v gives GoString,
// every other verb String.
func (k Key) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = f.Write([]byte(k.GoString()))
		return
	}
	_, _ = f.Write([]byte(k.String()))
}

// MarshalJSON writes the id and creation time, never the secret. Use JWK to
// export the key itself.
func (k Key) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		ID        string    `json:"kid"`
		CreatedAt time.Time `json:"created_at,omitzero"`
	}{k.ID, k.CreatedAt})
}

// LogValue logs the id and creation time, never the secret.
func (k Key) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("kid", k.ID)}
	if !k.CreatedAt.IsZero() {
		attrs = append(attrs, slog.Time("created_at", k.CreatedAt))
	}
	return slog.GroupValue(attrs...)
}

// jwk is a symmetric JSON Web Key (RFC 7517, RFC 7518 §6.4) for "alg":"dir".
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Alg string `json:"alg,omitempty"`
	Use string `json:"use,omitempty"`
	K   string `json:"k"`
}

// JWK exports the key, secret included, as a JSON Web Key
// {"kty":"oct","kid":...,"alg":"dir","use":"enc","k":...} that any JOSE
// library opens reports with. Show it once, to the key's owner.
func (k Key) JWK() ([]byte, error) {
	if err := k.validate(); err != nil {
		return nil, err
	}
	return json.Marshal(jwk{
		Kty: "oct",
		Kid: k.ID,
		Alg: string(algDir),
		Use: "enc",
		K:   base64.RawURLEncoding.EncodeToString(k.Secret),
	})
}

// ParseJWK reads a key exported by JWK (or written by another tool): kty
// "oct", a kid, a 32-byte k, and alg "dir" or no alg. The returned key has
// no CreatedAt. Errors never show the secret.
func ParseJWK(data []byte) (Key, error) {
	var j jwk
	if err := json.Unmarshal(data, &j); err != nil {
		// The json error may quote part of the input: leave it out.
		return Key{}, fmt.Errorf("%w: not a JSON object", ErrInvalidKey)
	}
	return j.key()
}

func (j jwk) key() (Key, error) {
	if j.Kty != "oct" {
		return Key{}, fmt.Errorf("%w: kty is %q, want \"oct\"", ErrInvalidKey, j.Kty)
	}
	if j.Alg != "" && j.Alg != string(algDir) {
		return Key{}, fmt.Errorf("%w: alg is %q, want \"dir\"", ErrInvalidKey, j.Alg)
	}
	if j.Use != "" && j.Use != "enc" {
		return Key{}, fmt.Errorf("%w: use is %q, want \"enc\"", ErrInvalidKey, j.Use)
	}
	// RFC 7515 base64url without padding; tolerate padding.
	secret, err := base64.RawURLEncoding.Strict().DecodeString(strings.TrimRight(j.K, "="))
	if err != nil {
		return Key{}, fmt.Errorf("%w: k is not base64url", ErrInvalidKey)
	}
	k := Key{ID: j.Kid, Secret: secret}
	if err := k.validate(); err != nil {
		return Key{}, err
	}
	return k, nil
}

// parseKeyFile reads a single JWK or a JWK Set ({"keys":[...]}).
func parseKeyFile(data []byte) ([]Key, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("%w: not a JSON object", ErrInvalidKey)
	}
	if set.Keys == nil {
		k, err := ParseJWK(data)
		if err != nil {
			return nil, err
		}
		return []Key{k}, nil
	}
	if len(set.Keys) == 0 {
		return nil, errors.New("report: the key set has no keys")
	}
	keys := make([]Key, 0, len(set.Keys))
	for i, raw := range set.Keys {
		k, err := ParseJWK(raw)
		if err != nil {
			return nil, fmt.Errorf("keys[%d]: %w", i, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}
