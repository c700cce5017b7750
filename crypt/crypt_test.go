package crypt_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/crypt"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func genKey(t *testing.T) (string, []byte) {
	t.Helper()
	s, err := crypt.GenerateMasterKey()
	require.NoError(t, err)
	raw, err := base64.StdEncoding.DecodeString(s)
	require.NoError(t, err)
	require.Len(t, raw, crypt.KeySize)
	return s, raw
}

func load(t *testing.T, keys ...string) crypt.MasterKey {
	t.Helper()
	m, err := crypt.LoadMasterKey(env(map[string]string{crypt.EnvKey: strings.Join(keys, ",")}))
	require.NoError(t, err)
	return m
}

var (
	secret  = []byte("hunter2: the target's basic-auth password")
	tenantA = []byte("tenant:a/target:web/auth.password")
	tenantB = []byte("tenant:b/target:web/auth.password")
)

func TestRoundTrip(t *testing.T) {
	k, raw := genKey(t)
	m := load(t, k)

	sealed, err := m.Seal(secret, tenantA)
	require.NoError(t, err)
	require.Len(t, sealed, len(secret)+crypt.Overhead)
	require.False(t, bytes.Contains(sealed, secret))

	// Layout: version, key id (SHA-256 prefix), nonce, ciphertext+tag.
	sum := sha256.Sum256(raw)
	require.Equal(t, byte(1), sealed[0])
	require.Equal(t, sum[:4], sealed[1:5])
	require.Equal(t, []string{hex.EncodeToString(sum[:4])}, m.KeyIDs())

	got, err := m.Open(sealed, tenantA)
	require.NoError(t, err)
	require.Equal(t, secret, got)

	// Fresh nonce every time.
	again, err := m.Seal(secret, tenantA)
	require.NoError(t, err)
	require.NotEqual(t, sealed, again)
	require.NotEqual(t, sealed[5:17], again[5:17])

	// Empty plaintext and nil aad.
	sealed, err = m.Seal(nil, nil)
	require.NoError(t, err)
	got, err = m.Open(sealed, nil)
	require.NoError(t, err)
	require.Empty(t, got)
	got, err = m.Open(sealed, []byte{})
	require.NoError(t, err, "nil and empty aad are the same")
	require.Empty(t, got)

	// The key from NewMasterKey is the same key.
	direct, err := crypt.NewMasterKey(raw)
	require.NoError(t, err)
	sealed, err = direct.Seal(secret, tenantA)
	require.NoError(t, err)
	got, err = m.Open(sealed, tenantA)
	require.NoError(t, err)
	require.Equal(t, secret, got)
}

func TestAADBinding(t *testing.T) {
	k, _ := genKey(t)
	m := load(t, k)
	sealed, err := m.Seal(secret, tenantA)
	require.NoError(t, err)

	for name, aad := range map[string][]byte{
		"other tenant": tenantB,
		"none":         nil,
		"prefix":       tenantA[:len(tenantA)-1],
		"longer":       append(append([]byte(nil), tenantA...), 0),
	} {
		t.Run(name, func(t *testing.T) {
			got, err := m.Open(sealed, aad)
			require.ErrorIs(t, err, crypt.ErrDecrypt)
			require.Nil(t, got)
		})
	}
}

func TestTampering(t *testing.T) {
	k, _ := genKey(t)
	m := load(t, k)
	sealed, err := m.Seal(secret, tenantA)
	require.NoError(t, err)

	for i := range sealed {
		bad := append([]byte(nil), sealed...)
		bad[i] ^= 0x01
		got, err := m.Open(bad, tenantA)
		require.Error(t, err, "byte %d flipped", i)
		require.Nil(t, got)
		switch {
		case i == 0:
			require.ErrorIs(t, err, crypt.ErrMalformed)
		case i < 5:
			require.ErrorIs(t, err, crypt.ErrUnknownKey)
		default:
			require.ErrorIs(t, err, crypt.ErrDecrypt)
		}
	}

	for _, n := range []int{0, 1, crypt.Overhead - 1} {
		_, err := m.Open(sealed[:n], tenantA)
		require.ErrorIs(t, err, crypt.ErrMalformed)
	}
	_, err = m.Open(sealed[:len(sealed)-1], tenantA)
	require.ErrorIs(t, err, crypt.ErrDecrypt)
	_, err = m.Open(append(append([]byte(nil), sealed...), 0), tenantA)
	require.ErrorIs(t, err, crypt.ErrDecrypt)
}

func TestWrongKey(t *testing.T) {
	a, _ := genKey(t)
	b, _ := genKey(t)
	sealed, err := load(t, a).Seal(secret, tenantA)
	require.NoError(t, err)

	_, err = load(t, b).Open(sealed, tenantA)
	require.ErrorIs(t, err, crypt.ErrUnknownKey)
	requireNoKey(t, err.Error(), a, b)

	// The zero MasterKey does nothing.
	var zero crypt.MasterKey
	_, err = zero.Seal(secret, nil)
	require.ErrorIs(t, err, crypt.ErrNoMasterKey)
	_, err = zero.Open(sealed, tenantA)
	require.ErrorIs(t, err, crypt.ErrNoMasterKey)
}

func TestRotation(t *testing.T) {
	old, _ := genKey(t)
	cur, _ := genKey(t)

	before := load(t, old)
	oldSealed, err := before.Seal(secret, tenantA)
	require.NoError(t, err)

	// Rotate: the new key first, the old one kept.
	after := load(t, cur, old)
	got, err := after.Open(oldSealed, tenantA)
	require.NoError(t, err)
	require.Equal(t, secret, got)
	require.True(t, after.NeedsReseal(oldSealed))

	newSealed, err := after.Seal(secret, tenantA)
	require.NoError(t, err)
	require.False(t, after.NeedsReseal(newSealed))
	require.Equal(t, after.KeyIDs()[0], hex.EncodeToString(newSealed[1:5]), "the first key seals")

	// The old key alone cannot open what the new one sealed.
	_, err = before.Open(newSealed, tenantA)
	require.ErrorIs(t, err, crypt.ErrUnknownKey)

	// Once every value is resealed, the old key can go.
	only := load(t, cur)
	got, err = only.Open(newSealed, tenantA)
	require.NoError(t, err)
	require.Equal(t, secret, got)
	_, err = only.Open(oldSealed, tenantA)
	require.ErrorIs(t, err, crypt.ErrUnknownKey)

	require.True(t, only.NeedsReseal(nil))
	require.True(t, crypt.MasterKey{}.NeedsReseal(newSealed))
}

func TestLoadMasterKey(t *testing.T) {
	a, rawA := genKey(t)
	b, _ := genKey(t)
	dir := t.TempDir()

	t.Run("file with two keys and blank lines", func(t *testing.T) {
		path := filepath.Join(dir, "master.key")
		require.NoError(t, os.WriteFile(path, []byte(a+"\n  "+b+"\r\n\n"), 0o600))
		m, err := crypt.LoadMasterKey(env(map[string]string{crypt.EnvKeyFile: path}))
		require.NoError(t, err)
		require.Len(t, m.KeyIDs(), 2)
		require.Equal(t, load(t, a, b).KeyIDs(), m.KeyIDs())
	})

	t.Run("URL-safe and unpadded base64", func(t *testing.T) {
		m, err := crypt.LoadMasterKey(env(map[string]string{crypt.EnvKey: base64.RawURLEncoding.EncodeToString(rawA)}))
		require.NoError(t, err)
		require.Equal(t, load(t, a).KeyIDs(), m.KeyIDs())
	})

	t.Run("comma list with spaces", func(t *testing.T) {
		m, err := crypt.LoadMasterKey(env(map[string]string{crypt.EnvKey: " " + a + " , " + b + ","}))
		require.NoError(t, err)
		require.Len(t, m.KeyIDs(), 2)
	})

	short := base64.StdEncoding.EncodeToString(rawA[:16])
	for _, tc := range []struct {
		name    string
		env     map[string]string
		want    error
		mention string
	}{
		{"nothing set", map[string]string{}, crypt.ErrNoMasterKey, crypt.EnvKey},
		{"only commas", map[string]string{crypt.EnvKey: " , ,"}, crypt.ErrNoMasterKey, crypt.EnvKey},
		{"both set", map[string]string{crypt.EnvKey: a, crypt.EnvKeyFile: "/x"}, nil, crypt.EnvKeyFile},
		{"not base64", map[string]string{crypt.EnvKey: a + ",not*base64!" + a[:10]}, crypt.ErrInvalidKey, "key 2"},
		{"16 bytes", map[string]string{crypt.EnvKey: short}, crypt.ErrInvalidKey, crypt.EnvKey},
		{"the same key twice", map[string]string{crypt.EnvKey: a + "," + b + "," + a}, crypt.ErrInvalidKey, "keys 1 and 3"},
		{"missing file", map[string]string{crypt.EnvKeyFile: filepath.Join(dir, "nope")}, os.ErrNotExist, crypt.EnvKeyFile},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := crypt.LoadMasterKey(env(tc.env))
			require.Error(t, err)
			if tc.want != nil {
				require.ErrorIs(t, err, tc.want)
			}
			require.Contains(t, err.Error(), tc.mention)
			requireNoKey(t, err.Error(), a, b, short)
		})
	}

	t.Run("bad key in a file names the file", func(t *testing.T) {
		path := filepath.Join(dir, "bad.key")
		require.NoError(t, os.WriteFile(path, []byte(short+"\n"), 0o600))
		_, err := crypt.LoadMasterKey(env(map[string]string{crypt.EnvKeyFile: path}))
		require.ErrorIs(t, err, crypt.ErrInvalidKey)
		require.Contains(t, err.Error(), path)
		require.Contains(t, err.Error(), "16 bytes")
		requireNoKey(t, err.Error(), short)
	})
}

func TestNewMasterKey(t *testing.T) {
	_, err := crypt.NewMasterKey()
	require.ErrorIs(t, err, crypt.ErrNoMasterKey)
	_, err = crypt.NewMasterKey(make([]byte, 31))
	require.ErrorIs(t, err, crypt.ErrInvalidKey)
}

// requireNoKey fails if s shows any of the base64 keys in a common encoding.
func requireNoKey(t *testing.T, s string, keys ...string) {
	t.Helper()
	for _, k := range keys {
		require.NotContains(t, s, k)
		raw, err := base64.StdEncoding.DecodeString(k)
		require.NoError(t, err)
		for _, enc := range []string{
			string(raw),
			hex.EncodeToString(raw),
			base64.RawURLEncoding.EncodeToString(raw),
			base64.RawStdEncoding.EncodeToString(raw),
			strings.Trim(fmt.Sprint(raw[:6]), "[]"),
			fmt.Sprintf("%q", raw)[1:12],
		} {
			require.NotContains(t, s, enc)
		}
	}
}

func TestMasterKeyNeverPrints(t *testing.T) {
	a, _ := genKey(t)
	b, _ := genKey(t)
	m := load(t, a, b)
	type holder struct {
		Key crypt.MasterKey
		Ptr *crypt.MasterKey
	}
	h := holder{m, &m}

	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
		outs = append(outs, fmt.Sprintf(verb, m), fmt.Sprintf(verb, &m), fmt.Sprintf(verb, h))
	}
	for _, v := range []any{m, &m, h} {
		j, err := json.Marshal(v)
		require.NoError(t, err)
		outs = append(outs, string(j))
	}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("loaded", "master", m, "h", h)
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("loaded", "master", m, "ptr", &m)
	outs = append(outs, buf.String())

	for _, out := range outs {
		requireNoKey(t, out, a, b)
	}
	require.Contains(t, fmt.Sprint(m), m.KeyIDs()[0])
	require.Contains(t, buf.String(), m.KeyIDs()[1])
}

func TestConcurrentUse(t *testing.T) {
	k, _ := genKey(t)
	m := load(t, k)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			aad := []byte(fmt.Sprintf("target:%d", i))
			for range 50 {
				s, err := m.Seal(secret, aad)
				if err != nil {
					t.Error(err)
					return
				}
				got, err := m.Open(s, aad)
				if err != nil || !bytes.Equal(got, secret) {
					t.Error("round trip failed", err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func ExampleMasterKey_Seal() {
	key, _ := crypt.GenerateMasterKey()
	m, _ := crypt.LoadMasterKey(func(name string) string {
		if name == crypt.EnvKey {
			return key
		}
		return ""
	})
	// Bind the value to its row so it opens nowhere else.
	aad := []byte("tenant:acme/target:api/auth.token")
	sealed, _ := m.Seal([]byte("s3cr3t"), aad)
	plain, _ := m.Open(sealed, aad)
	fmt.Println(string(plain), len(sealed)-len(plain) == crypt.Overhead)
	// Output: s3cr3t true
}
