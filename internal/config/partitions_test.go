package config

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/notifizz-bridge/notifizz-bridge/bridge"
)

func TestPartitionsConfigDefaults(t *testing.T) {
	cfg := Default()
	p := cfg.Bridge.Partitions
	assert.Zero(t, p.Count, "a single replica by default")
	assert.Equal(t, bridge.PartitionStatic, p.Mode)
	assert.Equal(t, "notifizz-bridge", p.Group)
	assert.Empty(t, p.Members)
	assert.Equal(t, 5*time.Second, p.FailoverAfter, "dead members are detected within seconds")
	assert.Equal(t, 5*time.Second, cfg.Bridge.Consumer.AckWait, "a dead bridge's messages come back within seconds")
	host, err := os.Hostname()
	require.NoError(t, err)
	short, _, _ := strings.Cut(host, ".")
	if !strings.ContainsFunc(short, func(r rune) bool { return r == '_' || r > 0x7f }) {
		assert.Equal(t, short, p.Member, "the member defaults to the host name")
	}
	require.NoError(t, cfg.Validate(), "single-replica mode needs no partition settings")
}

func TestDefaultMemberIsAValidName(t *testing.T) {
	cfg := bridge.DefaultConfig()
	cfg.Partitions = bridge.PartitionsConfig{Count: 3, Mode: bridge.PartitionElastic, Group: "g", Member: defaultMember(), FailoverAfter: 5 * time.Second}
	assert.NoError(t, cfg.Validate())
}

func TestLoadPartitionsConfig(t *testing.T) {
	t.Setenv("BRIDGE_MEMBERS", "bridge-0, bridge-1,bridge-2")
	path := writeFile(t, "c.yaml", `
partitions:
  count: 12
  group: bridges
  member: bridge-1
  members: ${BRIDGE_MEMBERS}
  failoverAfter: 3s
`)
	cfg, err := Load(path, Options{DryRun: true})
	require.NoError(t, err)
	assert.Equal(t, bridge.PartitionsConfig{
		Count: 12, Mode: bridge.PartitionStatic, Group: "bridges", Member: "bridge-1",
		Members: []string{"bridge-0", "bridge-1", "bridge-2"}, FailoverAfter: 3 * time.Second,
	}, cfg.Bridge.Partitions)

	out, err := cfg.YAML()
	require.NoError(t, err)
	assert.Contains(t, string(out), "partitions:\n  count: 12\n  mode: static\n  group: bridges\n  member: bridge-1\n  members: bridge-0,bridge-1,bridge-2\n  failoverAfter: 3s\n")
	back := Default()
	_, _, errs := back.decode(out, func(string) (string, bool) { return "", false })
	require.Empty(t, errs)
	assert.Equal(t, cfg.Bridge.Partitions, back.Bridge.Partitions, "check's output reads back")
}

func TestLoadPartitionsConfigProblems(t *testing.T) {
	path := writeFile(t, "c.yaml", `partitions:
  count: 2
  mode: static
  member: d
  members: a,b,c
`)
	_, err := Load(path, Options{DryRun: true})
	assert.Equal(t, []string{
		`line 4: partitions.member: "d" is not in partitions.members`,
		"line 5: partitions.members: has 3 members for 2 partitions: a member without a partition would never receive a message",
	}, problems(t, err))

	path = writeFile(t, "c.yaml", `partitions:
  count: 4
  mode: elastic
  member: host.example.com
  members: a
`)
	_, err = Load(path, Options{DryRun: true})
	assert.Equal(t, []string{
		`line 4: partitions.member: must be a name of at most 64 letters, digits, '-' or '_', not "host.example.com"`,
		"line 5: partitions.members: is only used in static mode: elastic members join the group by themselves",
	}, problems(t, err))

	path = writeFile(t, "c.yaml", `partitions:
  count: 4
  mode: elastic
  member: m
  failoverAfter: 500ms
`)
	_, err = Load(path, Options{DryRun: true})
	assert.Equal(t, []string{
		"line 5: partitions.failoverAfter: must be between 2s and 10m0s, not 500ms: replicas beat every quarter of it, " +
			"and a shorter one would take a replica that paused for a second for dead and move its partitions back and forth",
	}, problems(t, err))
}
