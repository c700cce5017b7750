package web

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/upwatch/upwatch/api"
	"github.com/upwatch/upwatch/internal/invalid"
	"github.com/upwatch/upwatch/registry"
)

// Role is what a user may do; it maps onto the API's scopes.
type Role string

// The roles, weakest first.
const (
	RoleViewer Role = "viewer" // read: the API's read scope
	RoleEditor Role = "editor" // and change targets, acknowledge incidents: write
	RoleAdmin  Role = "admin"  // and settings, keys, users: admin (with reports)
)

// Roles lists the roles, weakest first.
var Roles = []Role{RoleViewer, RoleEditor, RoleAdmin}

func (r Role) rank() int { return slices.Index(Roles, r) }

// atLeast reports whether r may do what min may.
func (r Role) atLeast(min Role) bool { return r.rank() >= 0 && r.rank() >= min.rank() }

// Scopes are the API scopes a role holds.
func (r Role) Scopes() []api.Scope {
	switch r {
	case RoleViewer:
		return []api.Scope{api.ScopeRead}
	case RoleEditor:
		return []api.Scope{api.ScopeWrite}
	case RoleAdmin:
		return []api.Scope{api.ScopeAdmin, api.ScopeReports}
	}
	return nil
}

// Password length bounds (bytes of UTF-8); the maximum bounds the hashing work.
const (
	MinPasswordLen = 10
	MaxPasswordLen = 1024
)

var userNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$`)

// NewUser checks a new user's fields and hashes the password. Every
// problem names its field (tenant, name, role, password).
func NewUser(tenantID, name string, role Role, password string, now time.Time) (registry.WebUser, error) {
	return newUser(tenantID, name, role, password, now, defaultParams, true)
}

func newUser(tenantID, name string, role Role, password string, now time.Time, p argonParams, checkLen bool) (registry.WebUser, error) {
	var errs []error
	if tenantID == "" {
		errs = append(errs, invalid.Field{Path: "tenant", Msg: "is required"})
	}
	if !userNamePattern.MatchString(name) {
		errs = append(errs, invalid.Field{Path: "name", Msg: "must be 1-64 letters, digits, '.', '_', '@', '+' or '-', starting with a letter or digit"})
	}
	if role.rank() < 0 {
		errs = append(errs, invalid.Field{Path: "role", Msg: fmt.Sprintf("must be viewer, editor or admin (got %q)", role)})
	}
	switch {
	case !utf8.ValidString(password):
		errs = append(errs, invalid.Field{Path: "password", Msg: "must be valid UTF-8"})
	case checkLen && len(password) < MinPasswordLen:
		errs = append(errs, invalid.Field{Path: "password", Msg: fmt.Sprintf("must be at least %d characters", MinPasswordLen)})
	case len(password) > MaxPasswordLen:
		errs = append(errs, invalid.Field{Path: "password", Msg: fmt.Sprintf("must be at most %d bytes", MaxPasswordLen)})
	}
	if len(errs) > 0 {
		return registry.WebUser{}, errors.Join(errs...)
	}
	hash, err := hashPassword(password, p)
	if err != nil {
		return registry.WebUser{}, err
	}
	return registry.WebUser{TenantID: tenantID, Name: name, PasswordHash: hash, Role: string(role), CreatedAt: now}, nil
}

// Demo user: read-only, password "demo", tenant default (config demo: true).
const (
	DemoUser     = "demo"
	DemoPassword = "demo"
)

// EnsureDemoUser creates the read-only demo user unless a user of that
// name exists already (whatever its role: an operator's choice stands).
func (s *Server) EnsureDemoUser(ctx context.Context) error {
	if _, err := s.o.Users.WebUser(ctx, registry.DefaultTenant, DemoUser); err == nil {
		return nil
	} else if !errors.Is(err, registry.ErrNotFound) {
		return err
	}
	u, err := newUser(registry.DefaultTenant, DemoUser, RoleViewer, DemoPassword, s.o.Now(), s.params, false)
	if err != nil {
		return err
	}
	if err := s.o.Users.CreateWebUser(ctx, u); err != nil && !errors.Is(err, registry.ErrConflict) {
		return err
	}
	return nil
}
