package secret

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSensitiveHeader(t *testing.T) {
	for _, name := range []string{"Authorization", "proxy-authorization", "Cookie", "X-API-Key", "X-Auth-Token",
		"X-Session-Id", "X-My-Secret", "Ocp-Apim-Subscription-Key", "X-Access-Key", "Private-Token", "X-Signature", "X-Amz-Credential", "X-Password"} {
		require.True(t, SensitiveHeader(name, nil), name)
	}
	for _, name := range []string{"Accept", "User-Agent", "Host", "X-Request-Id", "Content-Type"} {
		require.False(t, SensitiveHeader(name, nil), name)
	}
	// Names that look harmless are secret when the target marks them.
	require.False(t, SensitiveHeader("X-Access-Code", nil))
	require.True(t, SensitiveHeader("x-access-code", []string{"X-Access-Code"}))
}

func TestSensitiveParam(t *testing.T) {
	for _, name := range []string{"token", "access_token", "api_key", "apikey", "key", "secret", "password", "sig",
		"signature", "X-Amz-Signature", "pwd", "auth"} {
		require.True(t, SensitiveParam(name), name)
	}
	for _, name := range []string{"page", "q", "id", "format"} {
		require.False(t, SensitiveParam(name), name)
	}
}

func TestRedactURL(t *testing.T) {
	for _, c := range []struct{ in, creds, whole string }{
		{"https://example.com/health", "https://example.com/health", "https://example.com/…#" + URLHash("https://example.com/health")},
		{"https://example.com/", "https://example.com/", "https://example.com"},
		{"https://u:pw@example.com/a?token=t0p&page=2&sig=s1", "https://u:xxxxx@example.com/a?token=xxxxx&page=2&sig=xxxxx",
			"https://example.com/…#" + URLHash("https://u:pw@example.com/a?token=t0p&page=2&sig=s1")},
		{"https://u@example.com/?a&api_key=k%20k", "https://u@example.com/?a&api_key=xxxxx", "https://example.com/…#" + URLHash("https://u@example.com/?a&api_key=k%20k")},
		{"://bad", "<url>", "<url>"},
	} {
		require.Equal(t, c.creds, RedactURL(c.in, URLCredentials), c.in)
		require.Equal(t, c.whole, RedactURL(c.in, URLWhole), c.in)
	}
	require.NotEqual(t, RedactURL("https://h/a", URLWhole), RedactURL("https://h/b", URLWhole))
	require.True(t, IsRedactedURL(RedactURL("https://h/a?token=x", URLWhole)))
	require.False(t, IsRedactedURL("https://h/a?token=x"))
}

func TestUnredactURL(t *testing.T) {
	stored := "https://u:pw@example.com/a?token=t1&page=2&token=t2"
	shown := RedactURL(stored, URLCredentials)
	require.True(t, HasMask(shown))
	require.Equal(t, stored, UnredactURL(shown, stored))
	// An edit elsewhere keeps the credentials.
	edited := "https://u:xxxxx@example.com/b?token=xxxxx&page=3&token=xxxxx"
	require.Equal(t, "https://u:pw@example.com/b?token=t1&page=3&token=t2", UnredactURL(edited, stored))
	// A new value replaces the stored one; a mask stored cannot fill stays.
	require.Equal(t, "https://u:new@example.com/?key=xxxxx", UnredactURL("https://u:new@example.com/?key=xxxxx", stored))
	require.True(t, HasMask(UnredactURL("https://u:new@example.com/?key=xxxxx", stored)))
	require.False(t, HasMask(stored))
}
