package config

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestInclude: targets of included files follow the file's own, in the
// order of the patterns and names; each file is read once, the including
// one not again, and a pattern may match nothing.
func TestInclude(t *testing.T) {
	cfg, err := Load("testdata/include/ok/upwatch.yaml", noEnv)
	require.NoError(t, err)
	var ids []string
	for _, tg := range cfg.Targets {
		ids = append(ids, tg.ID)
	}
	require.Equal(t, []string{"main", "a1", "a2", "b1"}, ids)
	require.Equal(t, "targets[0]", cfg.TargetPath(0))
	require.Equal(t, "targets[1] in testdata/include/ok/targets.d/a.yaml", cfg.TargetPath(2))
	require.Equal(t, "targets[0] in testdata/include/ok/targets.d/b.yaml", cfg.TargetPath(3))
}

// TestIncludeErrors: one directory per broken include under
// testdata/include, with its exact error: the file, the line, and the
// target's index in that file.
func TestIncludeErrors(t *testing.T) {
	dir := "testdata/include/"
	cases := map[string]string{
		"missing": "invalid config " + dir + "missing/upwatch.yaml (1 problem):\n" +
			"  include[0]: " + dir + "missing/targets.d/eu.yaml: no such file",
		"bad-pattern": "invalid config " + dir + "bad-pattern/upwatch.yaml (2 problems):\n" +
			`  include[0]: "targets.d/[eu.yaml" is not a valid pattern: syntax error in pattern` + "\n" +
			"  include[1]: is empty",
		"unknown-field": "invalid config " + dir + "unknown-field/targets.d/eu.yaml (1 problem):\n" +
			"  targets[0].http.expect_stauts: unknown field; did you mean expect_status? (line 6)",
		"nested": "invalid config " + dir + "nested/targets.d/eu.yaml (1 problem):\n" +
			"  include: unknown field (line 1)",
		"duplicate-id": "invalid config " + dir + "duplicate-id/upwatch.yaml (1 problem):\n" +
			"  " + dir + `duplicate-id/targets.d/us.yaml:3: targets[1].id: "web" is already used by targets[1] in ` +
			dir + "duplicate-id/targets.d/eu.yaml (give one of them a distinct id or name)",
		"invalid-target": "invalid config " + dir + "invalid-target/upwatch.yaml (5 problems):\n" +
			"  targets[0].interval: must be between 1s and 24h0m0s (got 500ms)\n" +
			"  " + dir + `invalid-target/targets.d/eu.yaml:12: targets[2].http.url: scheme must be http or https (got "ftp")` + "\n" +
			"  " + dir + `invalid-target/targets.d/eu.yaml:16: targets[3].depends_on[1]: unknown target id "nowhere"` + "\n" +
			"  " + dir + "invalid-target/targets.d/eu.yaml:16: targets[3].depends_on: cycle eu-4 → eu-5 → eu-4\n" +
			"  " + dir + "invalid-target/targets.d/eu.yaml:20: targets[4].depends_on: cycle eu-5 → eu-4 → eu-5",
	}
	for name, want := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Load(filepath.Join(dir, name, "upwatch.yaml"), noEnv)
			require.EqualError(t, err, want)
		})
	}
}

// TestIncludeBounds: at most MaxIncludeFiles files, and each included file
// is held to the 16 MiB of a config file.
func TestIncludeBounds(t *testing.T) {
	dir := t.TempDir()
	d := filepath.Join(dir, "targets.d")
	require.NoError(t, os.Mkdir(d, 0o700))
	for i := range MaxIncludeFiles + 1 {
		require.NoError(t, os.WriteFile(filepath.Join(d, fmt.Sprintf("%05d.yaml", i)), nil, 0o600))
	}
	main := filepath.Join(dir, "upwatch.yaml")
	require.NoError(t, os.WriteFile(main, []byte("include: [targets.d/*.yaml]\n"), 0o600))
	_, err := Load(main, noEnv)
	require.EqualError(t, err, "invalid config "+main+" (1 problem):\n"+
		"  include[0]: the patterns up to this one match 10001 files, more than 10000")

	require.NoError(t, os.RemoveAll(d))
	require.NoError(t, os.Mkdir(d, 0o700))
	big := filepath.Join(d, "big.yaml")
	require.NoError(t, os.WriteFile(big, []byte("targets: []\n"+strings.Repeat("#", maxConfigFileBytes)), 0o600))
	_, err = Load(main, noEnv)
	require.EqualError(t, err, fmt.Sprintf("config %s: larger than %d bytes", big, maxConfigFileBytes))

	require.NoError(t, os.Remove(big))
	require.NoError(t, os.Mkdir(filepath.Join(d, "sub.yaml"), 0o700))
	_, err = Load(main, noEnv)
	require.EqualError(t, err, "config "+filepath.Join(d, "sub.yaml")+": not a regular file")
}

// TestDependencyCyclesMatchTheWalk: the component-first search names the
// same cycles as DependencyCycle run for every target, on random graphs.
func TestDependencyCyclesMatchTheWalk(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 300 {
		n := 1 + rng.IntN(12)
		targets := make([]Target, n)
		for i := range targets {
			targets[i].ID = fmt.Sprintf("t%d", i)
			for range rng.IntN(3) {
				targets[i].DependsOn = append(targets[i].DependsOn, fmt.Sprintf("t%d", rng.IntN(n+1))) // t<n> does not exist
			}
		}
		deps := map[string][]string{}
		for _, tg := range targets {
			deps[tg.ID] = tg.DependsOn
		}
		want := map[int][]string{}
		for i, tg := range targets {
			if cyc := DependencyCycle(tg.ID, func(id string) []string { return deps[id] }); cyc != nil {
				want[i] = cyc
			}
		}
		require.Equal(t, want, dependencyCycles(targets), "round %d: %+v", round, targets)
	}
}

// TestDependencyChainIsLinear: in a chain of 200,000 targets (each
// depending on the one before) with a cycle at its root, only the cycle's
// two targets are named. Walking every target's ancestors, as validation
// did, took 2·10¹⁰ steps here.
func TestDependencyChainIsLinear(t *testing.T) {
	const n = 200000
	targets := make([]Target, n)
	for i := range targets {
		targets[i].ID = fmt.Sprintf("t%d", i)
		if i > 0 {
			targets[i].DependsOn = []string{fmt.Sprintf("t%d", i-1)}
		}
	}
	targets[0].DependsOn = []string{"t1"}
	require.Equal(t, map[int][]string{0: {"t0", "t1", "t0"}, 1: {"t1", "t0", "t1"}}, dependencyCycles(targets))
}
