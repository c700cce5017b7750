package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSystemdAgentUnit: the agent's unit is hardened like the server's,
// takes its key as a systemd credential (never the command line or the
// environment), keeps its spool in its StateDirectory, and verifies.
func TestSystemdAgentUnit(t *testing.T) {
	b, err := os.ReadFile("systemd/upwatch-agent.service")
	require.NoError(t, err)
	unit := string(b)
	server, err := os.ReadFile("systemd/upwatch.service")
	require.NoError(t, err)
	_, hardening, ok := strings.Cut(string(server), "# Hardening")
	require.True(t, ok)
	hardening, _, _ = strings.Cut(hardening, "[Install]")
	for line := range strings.Lines(hardening) {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") && !strings.HasPrefix(line, ":") {
			require.Contains(t, unit, "\n"+line+"\n", "the agent unit lacks the server unit's %s", line)
		}
	}
	var execStart string
	for line := range strings.Lines(unit) {
		if v, ok := strings.CutPrefix(line, "ExecStart="); ok {
			execStart = strings.TrimSpace(v)
		}
	}
	args := strings.Fields(execStart)
	require.Equal(t, []string{"/usr/local/bin/upwatch", "agent"}, args[:2])
	require.Equal(t, "${CREDENTIALS_DIRECTORY}/agent-key", flagValue(args, "-key-file"))
	require.NotContains(t, args, "-key", "a key on the command line shows in ps")
	require.Contains(t, unit, "\nLoadCredential=agent-key:/etc/upwatch/agent.key\n")
	require.Contains(t, unit, "\nStateDirectory=upwatch-agent\n")
	require.Equal(t, "/var/lib/upwatch-agent", flagValue(args, "-data-dir"), "the spool lives in the StateDirectory")
	require.Contains(t, unit, "\nDynamicUser=yes\n")
	require.Contains(t, unit, "\nUMask=0077\n")

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil || testing.Short() {
		t.Skip("systemd-analyze is not available (or -short): the unit is checked by structure only")
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "upwatch-agent.service")
	require.NoError(t, os.WriteFile(p, []byte(strings.ReplaceAll(unit, "/usr/local/bin/upwatch", upwatchBinary(t))), 0o644))
	out, err := exec.Command(analyze, "verify", p).CombinedOutput()
	require.NoError(t, err, "systemd-analyze verify:\n%s", out)
	require.Empty(t, strings.TrimSpace(string(out)), "systemd-analyze verify warns")
}
