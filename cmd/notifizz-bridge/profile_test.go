package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStartProfiles(t *testing.T) {
	dir := t.TempDir()
	cpu, mem := filepath.Join(dir, "cpu.prof"), filepath.Join(dir, "mem.prof")
	t.Setenv(envCPUProfile, cpu)
	t.Setenv(envMemProfile, mem)
	stop, err := startProfiles()
	require.NoError(t, err)
	require.NoError(t, stop())
	for _, f := range []string{cpu, mem} {
		st, err := os.Stat(f)
		require.NoError(t, err)
		assert.Positive(t, st.Size(), f)
	}
}

func TestStartProfilesUnset(t *testing.T) {
	t.Setenv(envCPUProfile, "")
	t.Setenv(envMemProfile, "")
	stop, err := startProfiles()
	require.NoError(t, err)
	require.NoError(t, stop())
}

func TestStartProfilesBadPath(t *testing.T) {
	t.Setenv(envCPUProfile, filepath.Join(t.TempDir(), "missing", "cpu.prof"))
	_, err := startProfiles()
	require.ErrorContains(t, err, envCPUProfile)
}
