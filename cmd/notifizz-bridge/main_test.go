package main

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/notifizz-bridge/notifizz-bridge/internal/loopback"
)

// binDir holds the daemon binary the end-to-end tests run; TestMain owns it because a test's
// TempDir would vanish with the test that happened to build it.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "notifizz-bridge-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var (
	buildOnce sync.Once
	buildErr  error
)

// binary builds the daemon once per test binary, with the race detector when the tests have
// it, so that the end-to-end tests also check the daemon for races.
func binary(t *testing.T) string {
	t.Helper()
	path := filepath.Join(binDir, "notifizz-bridge")
	buildOnce.Do(func() {
		args := []string{"build", "-o", path}
		if raceEnabled {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, ".")...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	require.NoError(t, buildErr)
	return path
}

// binaryEnv is the environment of a process of the binary: the test's, env, and for a race
// build no pause at exit (the race runtime sleeps a second by default, which would add up over
// the many short publish commands). A race found in the daemon still makes it exit with 66.
func binaryEnv(env []string) []string {
	env = append(os.Environ(), env...)
	if raceEnabled {
		env = append(env, "GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	}
	return env
}

// freeAddr returns a loopback address with a port that was free a moment ago, outside the
// range the other packages' test servers are given (see package loopback).
func freeAddr(t *testing.T) string {
	t.Helper()
	addr, err := loopback.FreeAddr()
	require.NoError(t, err)
	return addr
}

// syncBuffer is a bytes.Buffer safe for the writer goroutine of exec and the test to share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lineWriter keeps everything written and hands each complete line to a channel.
type lineWriter struct {
	syncBuffer
	mu      sync.Mutex
	partial []byte
	lines   chan string
}

func newLineWriter() *lineWriter { return &lineWriter{lines: make(chan string, 1024)} }

func (w *lineWriter) Write(p []byte) (int, error) {
	w.syncBuffer.Write(p)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		w.lines <- string(w.partial[:i])
		w.partial = w.partial[i+1:]
	}
}

// daemon is a running notifizz-bridge process.
type daemon struct {
	cmd    *exec.Cmd
	stdout *lineWriter
	stderr *syncBuffer
	done   chan struct{} // closed when the process has exited
	err    error         // Wait's result, valid once done is closed
}

// startDaemon starts the binary with args and env added to the test's environment. The
// process is killed at the end of the test if it is still running, and its stderr is logged
// if the test failed.
func startDaemon(t *testing.T, env []string, args ...string) *daemon {
	t.Helper()
	d := &daemon{
		cmd:    exec.Command(binary(t), args...),
		stdout: newLineWriter(),
		stderr: &syncBuffer{},
		done:   make(chan struct{}),
	}
	d.cmd.Env = binaryEnv(env)
	d.cmd.Stdout, d.cmd.Stderr = d.stdout, d.stderr
	require.NoError(t, d.cmd.Start())
	go func() {
		d.err = d.cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(func() {
		select {
		case <-d.done:
		default:
			_ = d.cmd.Process.Kill()
			<-d.done
		}
		if t.Failed() {
			t.Logf("daemon stderr:\n%s\ndaemon stdout:\n%s", d.stderr.String(), d.stdout.String())
		}
	})
	return d
}

func (d *daemon) exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// wait waits for the process to exit and returns its exit code.
func (d *daemon) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-d.done:
	case <-time.After(timeout):
		require.FailNow(t, "daemon did not exit", "within %s", timeout)
	}
	var ee *exec.ExitError
	if errors.As(d.err, &ee) {
		return ee.ExitCode()
	}
	require.NoError(t, d.err)
	return 0
}

// stop sends SIGTERM and returns the exit code.
func (d *daemon) stop(t *testing.T) int {
	t.Helper()
	require.NoError(t, d.cmd.Process.Signal(syscall.SIGTERM))
	return d.wait(t, 20*time.Second)
}

// nextLine returns the next line the daemon writes to stdout.
func (d *daemon) nextLine(t *testing.T, timeout time.Duration) string {
	t.Helper()
	select {
	case l := <-d.stdout.lines:
		return l
	case <-time.After(timeout):
		require.FailNow(t, "no line on the daemon's stdout", "within %s", timeout)
		return ""
	}
}

var probeClient = &http.Client{Timeout: 2 * time.Second}

// readyz returns the status and body of /readyz, or 0 when it cannot be reached.
func readyz(addr string) (int, string) {
	resp, err := probeClient.Get("http://" + addr + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	_, _ = body.ReadFrom(resp.Body)
	return resp.StatusCode, strings.TrimSpace(body.String())
}

// waitReadyz polls /readyz until it answers want; it fails at once if the daemon exits.
func (d *daemon) waitReadyz(t *testing.T, addr string, want int) string {
	t.Helper()
	var last string
	require.Eventually(t, func() bool {
		if d.exited() {
			return true
		}
		code, body := readyz(addr)
		last = fmt.Sprintf("%d %s", code, body)
		return code == want
	}, 30*time.Second, 25*time.Millisecond, "/readyz never answered %d; last: %s", want, &last)
	require.False(t, d.exited(), "daemon exited: %v", d.err)
	return last
}

// runBinary runs one command of the binary to completion.
func runBinary(t *testing.T, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Env = binaryEnv(env)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		require.NoError(t, err)
	}
	return code, out.String(), errOut.String()
}

// publish publishes one message with the binary's publish command and checks it was stored.
func publish(t *testing.T, config string, args ...string) {
	t.Helper()
	code, stdout, stderr := runBinary(t, nil, append([]string{"publish", "--config", config}, args...)...)
	require.Equal(t, 0, code, "publish %v: %s", args, stderr)
	require.Regexp(t, `^stream=NOTIFIZZ seq=\d+\n$`, stdout)
}
