package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/registry"
)

// Bootstrap makes sure tenant "default" exists and, when key is not empty
// and that tenant has no valid admin key yet, stores key (hashed) as its
// admin key. It reports whether it stored the key.
func Bootstrap(ctx context.Context, tenants TenantStore, keys KeyStore, key string, now time.Time) (bool, error) {
	if err := tenants.CreateTenant(ctx, registry.Tenant{ID: registry.DefaultTenant, Name: "default", CreatedAt: now}); err != nil && !errors.Is(err, registry.ErrConflict) {
		return false, err
	}
	if key == "" {
		return false, nil
	}
	if !wellFormed(key) {
		return false, fmt.Errorf("the bootstrap key is malformed: it must be %q followed by %d base62 characters (`upwatch keygen` prints a master key, not an API key)", KeyPrefix, keySecretLen)
	}
	have, err := keys.APIKeys(ctx, registry.DefaultTenant)
	if err != nil {
		return false, err
	}
	for _, k := range have {
		valid := k.RevokedAt.IsZero() && (k.ExpiresAt.IsZero() || now.Before(k.ExpiresAt))
		if valid && slices.Contains(k.Scopes, string(ScopeAdmin)) {
			return false, nil
		}
	}
	id, err := randomID("key_")
	if err != nil {
		return false, err
	}
	err = keys.CreateAPIKey(ctx, registry.APIKey{ID: id, TenantID: registry.DefaultTenant, Name: "bootstrap",
		Prefix: key[:keyPrefixLen], Hash: HashKey(key), Scopes: []string{string(ScopeAdmin)}, CreatedAt: now})
	return err == nil, err
}

// BootstrapAgent stores key (hashed) as an agent key of tenant "default"
// bound to location, unless a key with that hash was ever stored: a key an
// admin revoked stays revoked across restarts. It reports whether it
// stored the key. It lets a stack (docker compose) start its agents
// without an admin creating their key by hand first.
func BootstrapAgent(ctx context.Context, keys KeyStore, key, location string, now time.Time) (bool, error) {
	if !wellFormed(key) {
		return false, fmt.Errorf("the bootstrap agent key is malformed: it must be %q followed by %d base62 characters (upwatch keygen api-key)", KeyPrefix, keySecretLen)
	}
	if !prober.ValidLocation(location) {
		return false, fmt.Errorf("the bootstrap agent location must be 1-64 letters, digits, '-', '_' or '.' (got %q)", location)
	}
	have, err := keys.APIKeys(ctx, registry.DefaultTenant)
	if err != nil {
		return false, err
	}
	hash := HashKey(key)
	for _, k := range have {
		if !bytes.Equal(k.Hash, hash) {
			continue
		}
		if k.RevokedAt.IsZero() && !slices.Equal(k.Scopes, []string{agentScope(location)}) {
			return false, fmt.Errorf("the bootstrap agent key is already stored with scopes %v, not as the agent key of %s: make a new key for that location", k.Scopes, location)
		}
		return false, nil
	}
	id, err := randomID("key_")
	if err != nil {
		return false, err
	}
	err = keys.CreateAPIKey(ctx, registry.APIKey{ID: id, TenantID: registry.DefaultTenant, Name: "bootstrap agent " + location,
		Prefix: key[:keyPrefixLen], Hash: hash, Scopes: []string{agentScope(location)}, CreatedAt: now})
	return err == nil, err
}
