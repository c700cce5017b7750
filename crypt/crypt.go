// Package crypt encrypts target credentials at rest (DESIGN §5): AES-256-GCM
// under a master key taken from the environment or a file.
//
// A sealed value is
//
//	version (1 byte, 0x01) | key id (4 bytes) | nonce (12 bytes) | ciphertext+tag
//
// where the key id is the first 4 bytes of SHA-256 of the key, and the
// version and key id are authenticated along with the caller's additional
// data. Bind every value to where it lives with that additional data (the
// tenant and target id, say), so a value copied to another row does not
// open there.
//
// Several keys may be loaded for rotation: the first seals, all open.
// Nonces are random, which is sound for up to about 2^32 values per key.
package crypt

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
)

// Environment variables LoadMasterKey reads.
const (
	EnvKey     = "UPWATCH_MASTER_KEY"
	EnvKeyFile = "UPWATCH_MASTER_KEY_FILE"
)

// KeySize is the size of a master key in bytes.
const KeySize = 32

const (
	version   = 0x01
	idSize    = 4
	nonceSize = 12
	tagSize   = 16
	// headerSize is what Seal puts in front of the ciphertext.
	headerSize = 1 + idSize + nonceSize
)

// Overhead is how much longer a sealed value is than its plaintext.
const (
	Overhead = headerSize + tagSize
)

// Errors, to test with errors.Is. None of them ever carries key material.
var (
	// ErrNoMasterKey: neither variable is set, or the MasterKey is the zero value.
	ErrNoMasterKey = errors.New("crypt: no master key")
	// ErrInvalidKey: a key that is not base64 of 32 bytes, or a duplicate.
	ErrInvalidKey = errors.New("crypt: invalid master key")
	// ErrMalformed: too short, or an unknown format version.
	ErrMalformed = errors.New("crypt: malformed sealed value")
	// ErrUnknownKey: sealed under a key that is not loaded.
	ErrUnknownKey = errors.New("crypt: sealed under an unknown master key")
	// ErrDecrypt: authentication failed: altered, or other additional data.
	ErrDecrypt = errors.New("crypt: decryption failed")
)

type key struct {
	id   [idSize]byte
	aead cipher.AEAD
}

// MasterKey holds one or more AES-256 keys; the first seals. It never
// prints, logs or marshals its keys. The zero value seals and opens
// nothing (ErrNoMasterKey). A MasterKey is safe for concurrent use.
type MasterKey struct {
	keys []key
}

// NewMasterKey builds a MasterKey from raw 32-byte keys, the current one
// first. Duplicate keys are refused.
func NewMasterKey(keys ...[]byte) (MasterKey, error) {
	if len(keys) == 0 {
		return MasterKey{}, ErrNoMasterKey
	}
	m := MasterKey{keys: make([]key, 0, len(keys))}
	for i, raw := range keys {
		if len(raw) != KeySize {
			return MasterKey{}, fmt.Errorf("%w: key %d is %d bytes, want %d", ErrInvalidKey, i+1, len(raw), KeySize)
		}
		sum := sha256.Sum256(raw)
		var k key
		copy(k.id[:], sum[:idSize])
		for j, prev := range m.keys {
			if prev.id == k.id {
				return MasterKey{}, fmt.Errorf("%w: keys %d and %d have the same id (the same key twice?)", ErrInvalidKey, j+1, i+1)
			}
		}
		block, err := aes.NewCipher(raw)
		if err != nil {
			return MasterKey{}, fmt.Errorf("%w: key %d", ErrInvalidKey, i+1)
		}
		k.aead, err = cipher.NewGCM(block)
		if err != nil {
			return MasterKey{}, fmt.Errorf("%w: key %d", ErrInvalidKey, i+1)
		}
		m.keys = append(m.keys, k)
	}
	return m, nil
}

// LoadMasterKey reads the master key from UPWATCH_MASTER_KEY, or from the
// file UPWATCH_MASTER_KEY_FILE names (one of them, not both). Either holds
// one or more base64 keys of 32 bytes separated by commas or line breaks,
// the current key first; older keys open values sealed before a rotation.
// Errors name the variable or file, never the value.
func LoadMasterKey(getenv func(string) string) (MasterKey, error) {
	inline, file := getenv(EnvKey), getenv(EnvKeyFile)
	var src, text string
	switch {
	case inline != "" && file != "":
		return MasterKey{}, fmt.Errorf("crypt: set %s or %s, not both", EnvKey, EnvKeyFile)
	case inline != "":
		src, text = EnvKey, inline
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return MasterKey{}, fmt.Errorf("crypt: %s: %w", EnvKeyFile, err)
		}
		src, text = fmt.Sprintf("%s (%s)", EnvKeyFile, file), string(b)
	default:
		return MasterKey{}, fmt.Errorf("%w: set %s (base64 of %d bytes; `upwatch keygen` makes one) or %s", ErrNoMasterKey, EnvKey, KeySize, EnvKeyFile)
	}

	fields := strings.FieldsFunc(text, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' })
	var keys [][]byte
	for _, f := range fields {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		raw, ok := decodeBase64(f)
		if !ok {
			return MasterKey{}, fmt.Errorf("%s: %w: key %d is not base64", src, ErrInvalidKey, len(keys)+1)
		}
		keys = append(keys, raw)
	}
	if len(keys) == 0 {
		return MasterKey{}, fmt.Errorf("%s: %w: no key in it", src, ErrNoMasterKey)
	}
	m, err := NewMasterKey(keys...)
	if err != nil {
		return MasterKey{}, fmt.Errorf("%s: %w", src, err)
	}
	return m, nil
}

// decodeBase64 accepts standard or URL-safe base64, padded or not.
func decodeBase64(s string) ([]byte, bool) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, true
		}
	}
	return nil, false
}

// GenerateMasterKey returns a new random key, standard base64, for
// UPWATCH_MASTER_KEY.
func GenerateMasterKey() (string, error) {
	raw := make([]byte, KeySize)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("crypt: generating key: %w", err)
	}
	return base64.StdEncoding.EncodeToString(raw), nil
}

// header returns version | key id | nonce for k, with a fresh nonce and
// room for size more bytes.
func (k key) header(size int) ([]byte, error) {
	h := make([]byte, headerSize, headerSize+size)
	h[0] = version
	copy(h[1:], k.id[:])
	if _, err := rand.Read(h[1+idSize:]); err != nil {
		return nil, fmt.Errorf("crypt: nonce: %w", err)
	}
	return h, nil
}

// additional returns what GCM authenticates: the version and key id, then
// the caller's additional data.
func additional(sealed, aad []byte) []byte {
	a := make([]byte, 0, 1+idSize+len(aad))
	a = append(a, sealed[:1+idSize]...)
	return append(a, aad...)
}

// Seal encrypts plaintext under the current key, binding aad (which is not
// stored: Open needs the same aad).
func (m MasterKey) Seal(plaintext, aad []byte) ([]byte, error) {
	if len(m.keys) == 0 {
		return nil, ErrNoMasterKey
	}
	k := m.keys[0]
	h, err := k.header(len(plaintext) + tagSize)
	if err != nil {
		return nil, err
	}
	return k.aead.Seal(h, h[1+idSize:], plaintext, additional(h, aad)), nil
}

// Open decrypts a value Seal returned, under whichever loaded key sealed
// it, checking aad.
func (m MasterKey) Open(sealed, aad []byte) ([]byte, error) {
	if len(m.keys) == 0 {
		return nil, ErrNoMasterKey
	}
	if len(sealed) < Overhead {
		return nil, fmt.Errorf("%w: %d bytes, want at least %d", ErrMalformed, len(sealed), Overhead)
	}
	if sealed[0] != version {
		return nil, fmt.Errorf("%w: version %d", ErrMalformed, sealed[0])
	}
	k, ok := m.find(sealed)
	if !ok {
		return nil, fmt.Errorf("%w: key id %s", ErrUnknownKey, hex.EncodeToString(sealed[1:1+idSize]))
	}
	plaintext, err := k.aead.Open(nil, sealed[1+idSize:headerSize], sealed[headerSize:], additional(sealed, aad))
	if err != nil {
		return nil, ErrDecrypt
	}
	return plaintext, nil
}

func (m MasterKey) find(sealed []byte) (key, bool) {
	for _, k := range m.keys {
		if bytes.Equal(k.id[:], sealed[1:1+idSize]) {
			return k, true
		}
	}
	return key{}, false
}

// NeedsReseal reports whether sealed was made under a key other than the
// current one (or is not a value this package made), so a rotation job
// can Open and Seal it again.
func (m MasterKey) NeedsReseal(sealed []byte) bool {
	if len(m.keys) == 0 || len(sealed) < Overhead || sealed[0] != version {
		return true
	}
	return !bytes.Equal(m.keys[0].id[:], sealed[1:1+idSize])
}

// KeyIDs returns the hex ids of the loaded keys, current first; they are
// safe to log.
func (m MasterKey) KeyIDs() []string {
	ids := make([]string, len(m.keys))
	for i, k := range m.keys {
		ids[i] = hex.EncodeToString(k.id[:])
	}
	return ids
}

// String shows the key ids, never the keys.
func (m MasterKey) String() string {
	if len(m.keys) == 0 {
		return "master key (none)"
	}
	return "master key " + strings.Join(m.KeyIDs(), ",")
}

// GoString keeps %#v from printing the keys.
func (m MasterKey) GoString() string { return "crypt.MasterKey{" + strings.Join(m.KeyIDs(), ",") + "}" }

// Format keeps every fmt verb from printing the keys.
func (m MasterKey) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = f.Write([]byte(m.GoString()))
		return
	}
	_, _ = f.Write([]byte(m.String()))
}

// MarshalJSON writes the key ids only.
func (m MasterKey) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		KeyIDs []string `json:"key_ids"`
	}{m.KeyIDs()})
}

// LogValue logs the key ids only.
func (m MasterKey) LogValue() slog.Value {
	return slog.GroupValue(slog.Any("key_ids", m.KeyIDs()))
}
