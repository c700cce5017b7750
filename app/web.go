package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/upwatch/upwatch/api"
	"github.com/upwatch/upwatch/config"
	"github.com/upwatch/upwatch/registry"
	"github.com/upwatch/upwatch/web"
)

// startWeb builds the web interface over the API and, with demo: true,
// makes sure the read-only user demo/demo exists.
func startWeb(ctx context.Context, d apiDeps, srv *api.Server) (*web.Server, error) {
	w, err := web.New(web.Options{
		API: srv, Samples: d.samples, Users: d.registry, Sessions: d.registry, Notes: d.registry, Notifications: d.registry,
		States: d.engine.State, SignIn: srv.AuthFailures(), Web: d.cfg.Web, Demo: d.cfg.Demo,
		Now: d.now, Logger: d.log.With("component", "web"),
	})
	if err != nil {
		return nil, err
	}
	if d.cfg.Demo {
		if err := w.EnsureDemoUser(ctx); err != nil {
			return nil, fmt.Errorf("demo user: %w", err)
		}
	}
	return w, nil
}

// mountWeb serves the web interface at / (exactly) and /ui/, everything
// else with rest (the API, /metrics, /healthz, ...).
func mountWeb(rest http.Handler, w *web.Server) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", w.Handler())
	mux.Handle(web.Prefix+"/", w.Handler())
	mux.Handle("/", rest)
	return mux
}

// AddUser creates a web user (`upwatch user add`): tenant "default" is
// created when missing, any other tenant must exist.
func AddUser(ctx context.Context, cfg *config.Config, getenv func(string) string, log *slog.Logger, tenant, name string, role web.Role, password string, now func() time.Time) error {
	u, err := web.NewUser(tenant, name, role, password, now())
	if err != nil {
		return err
	}
	mk, _, err := loadMasterKey(cfg, getenv, log)
	if err != nil {
		return err
	}
	reg, _, err := openRegistry(ctx, cfg, mk, now, log)
	if err != nil {
		return err
	}
	defer func() { _ = reg.Close() }()
	if tenant == registry.DefaultTenant {
		if _, err := api.Bootstrap(ctx, reg, reg, "", now()); err != nil {
			return err
		}
	} else if _, err := reg.Tenant(ctx, tenant); errors.Is(err, registry.ErrNotFound) {
		return fmt.Errorf("tenant: %q does not exist (create it with POST /api/v1/tenants)", tenant)
	} else if err != nil {
		return err
	}
	if err := reg.CreateWebUser(ctx, u); errors.Is(err, registry.ErrConflict) {
		return fmt.Errorf("name: user %q already exists in tenant %q", name, tenant)
	} else if err != nil {
		return err
	}
	return nil
}
