package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
)

// versionInfo is what the binary knows about its own build.
type versionInfo struct {
	Version  string // module version, "(devel)" for a build from a work tree
	Revision string // VCS revision, when the build recorded it
	Time     string // commit time, when recorded
	Modified bool   // the work tree had uncommitted changes
	Go       string
}

// Stamped at link time by the image's and CI's build (-ldflags "-X main.stampedVersion=...
// -X main.stampedRevision=..."), because a build without VCS information (-buildvcs=false, a
// source tree without .git, as in a Docker build) records no revision of its own.
var (
	stampedVersion  string
	stampedRevision string
)

// buildVersion reads the build information once; it never changes while the process runs.
var buildVersion = sync.OnceValue(func() versionInfo {
	bi, _ := debug.ReadBuildInfo()
	return readVersion(bi, stampedVersion, stampedRevision)
})

// readVersion merges what the linker stamped, which wins, with what the Go toolchain recorded.
func readVersion(bi *debug.BuildInfo, version, revision string) versionInfo {
	v := versionInfo{Version: "(devel)", Go: runtime.Version()}
	if bi != nil {
		if bi.Main.Version != "" {
			v.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Revision = s.Value
			case "vcs.time":
				v.Time = s.Value
			case "vcs.modified":
				v.Modified = s.Value == "true"
			}
		}
	}
	if version != "" {
		v.Version = version
	}
	if revision != "" && revision != v.Revision {
		// The toolchain's time and modified flag describe another revision, if any.
		v.Revision, v.Time, v.Modified = revision, "", strings.HasSuffix(revision, "-dirty")
		v.Revision = strings.TrimSuffix(v.Revision, "-dirty")
	}
	return v
}

// short is the version for logs and the User-Agent: the module version, or the short VCS
// revision for a development build that recorded one.
func (v versionInfo) short() string {
	if v.Version == "(devel)" && v.Revision != "" {
		r := v.Revision
		if len(r) > 12 {
			r = r[:12]
		}
		if v.Modified {
			r += "-dirty"
		}
		return r
	}
	return v.Version
}

// String is the line the version command prints.
func (v versionInfo) String() string {
	s := "notifizz-bridge " + v.Version
	if v.Revision != "" {
		s += " (" + v.Revision
		if v.Time != "" {
			s += ", " + v.Time
		}
		if v.Modified {
			s += ", modified"
		}
		s += ")"
	}
	return fmt.Sprintf("%s %s %s/%s", s, v.Go, runtime.GOOS, runtime.GOARCH)
}
