package prober

// PLACEHOLDER: replaced by the real OAuth2 token cache.
type oauthCache struct{}

func newOAuthCache() *oauthCache { return &oauthCache{} }
