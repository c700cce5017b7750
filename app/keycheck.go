package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/upwatch/upwatch/config"
	"github.com/upwatch/upwatch/crypt"
	"github.com/upwatch/upwatch/registry"
	"github.com/upwatch/upwatch/tenancy"
)

// checkMasterKey refuses to start when the master key (from keySource)
// does not open what the registry already holds sealed: API targets'
// credentials and report keys. Without this check such targets were left
// out of the schedule and answered 500, silently. Only a value sealed under
// a key that is not loaded counts (crypt.ErrUnknownKey); a value that does
// not authenticate under the right key is another problem, reported where
// it is read.
func checkMasterKey(ctx context.Context, cfg *config.Config, reg registryStore, mk crypt.MasterKey, keySource string) error {
	recs, err := reg.Targets(ctx, "")
	if err != nil {
		return fmt.Errorf("checking the master key: %w", err)
	}
	var targets, reportKeys int
	var sample *registry.TargetRecord
	for i, rec := range recs {
		if len(rec.Secrets) == 0 {
			continue
		}
		if _, err := tenancy.OpenTarget(rec, mk); errors.Is(err, crypt.ErrUnknownKey) {
			targets++
			if sample == nil {
				sample = &recs[i]
			}
		}
	}
	tenants, err := reg.Tenants(ctx)
	if err != nil {
		return fmt.Errorf("checking the master key: %w", err)
	}
	for _, t := range tenants {
		if _, err := reg.ReportKeys(ctx, t.ID); errors.Is(err, crypt.ErrUnknownKey) {
			reportKeys++
		}
	}
	if targets == 0 && reportKeys == 0 {
		return nil
	}
	var what []string
	if targets > 0 {
		what = append(what, "credentials of "+plural(targets, "target", "targets"))
	}
	if reportKeys > 0 {
		what = append(what, "report keys of "+plural(reportKeys, "tenant", "tenants"))
	}
	where := "the PostgreSQL registry"
	if cfg.Registry.Type != "postgres" {
		where = filepath.Join(cfg.DataDir, RegistryFile)
	}
	return fmt.Errorf("the master key from %s does not open the secrets stored in %s (%s): they were sealed with %s; start with that key, or rotate by listing the new key first and the old one after it (%s=new,old)",
		keySource, where, strings.Join(what, ", "), sealedWith(cfg, keySource, sample), crypt.EnvKey)
}

// sealedWith names the key that sealed rec when it is the one in the data
// dir (the key a first start without UPWATCH_MASTER_KEY made), else says
// "another key".
func sealedWith(cfg *config.Config, keySource string, rec *registry.TargetRecord) string {
	path := filepath.Join(cfg.DataDir, MasterKeyFile)
	if keySource == path {
		return "another key"
	}
	if _, err := os.Stat(path); err != nil {
		return "another key"
	}
	if rec != nil {
		alt, err := crypt.LoadMasterKey(func(name string) string {
			if name == crypt.EnvKeyFile {
				return path
			}
			return ""
		})
		if err == nil {
			if _, err := tenancy.OpenTarget(*rec, alt); err == nil {
				return "the key in " + path + " (" + crypt.EnvKeyFile + "=" + path + ")"
			}
		}
	}
	return "another key, perhaps the one in " + path
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
