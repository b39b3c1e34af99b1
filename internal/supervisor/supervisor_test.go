package supervisor_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/microshop/microshop/internal/platform/logging/logtest"

	"github.com/microshop/microshop/internal/supervisor"
)

// childEnv, when set to 1, makes the test binary act as a supervised child
// instead of running the tests (see TestMain and runChild).
const childEnv = "SUPERVISOR_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(runChild(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// runChild is the body of a child process. Its arguments are its name and the
// address to serve on. It answers /healthz with 200, prints "hello from
// <name>" once it listens, and on SIGTERM prints "bye from <name>" and exits 0.
func runChild(args []string) int {
	if len(args) != 2 {
		fmt.Fprintf(os.Stderr, "child: want arguments NAME ADDR, got %q\n", args)
		return 2
	}
	name, addr := args[0], args[1]
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	var ln net.Listener
	var err error
	// A restarted child may briefly find its port still held by the old one.
	for range 100 {
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "child %s: %v\n", name, err)
		return 1
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	fmt.Printf("hello from %s\n", name)
	<-ctx.Done()
	srv.Close()
	fmt.Printf("bye from %s\n", name)
	return 0
}

// syncBuffer collects output written from several goroutines.
type syncBuffer = logtest.Buffer

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// eventually polls cond until it holds, and fails the test with what when it
// does not within a generous deadline.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func healthy(url string) bool {
	resp, err := http.Get(url)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

func gone(pid int) bool { return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) }

func readStateFile(t *testing.T, path string) map[string]supervisor.State {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("state file: %v", err)
	}
	var got map[string]supervisor.State
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("state file: %v: %s", err, b)
	}
	return got
}

// count returns how many whole lines of out equal line.
func count(out, line string) int {
	n := 0
	for l := range strings.Lines(out) {
		if strings.TrimSuffix(l, "\n") == line {
			n++
		}
	}
	return n
}

func TestRun(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var procs []supervisor.Process
	for _, name := range []string{"users", "products"} {
		addr := freeAddr(t)
		procs = append(procs, supervisor.Process{
			Name: name, Args: []string{name, addr}, Addr: addr, DebugAddr: freeAddr(t),
			HealthURL: "http://" + addr + "/healthz",
		})
	}
	victim, bystander := procs[0], procs[1]
	stateFile := filepath.Join(t.TempDir(), "run", "state.json")
	var out syncBuffer
	sup := &supervisor.Supervisor{
		Executable:   exe,
		Env:          append(os.Environ(), childEnv+"=1"),
		Output:       &out,
		Log:          slog.New(slog.DiscardHandler),
		RestartDelay: 50 * time.Millisecond,
		StateFile:    stateFile,
	}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	readyCalls := 0
	healthyAtReady := map[string]bool{}
	ready := make(chan struct{})
	finished := make(chan struct{}) // closed when Run has returned runErr
	var runErr error
	go func() {
		defer close(finished)
		runErr = sup.Run(ctx, procs, func() {
			readyCalls++
			for _, p := range procs {
				healthyAtReady[p.Name] = healthy(p.HealthURL)
			}
			close(ready)
		})
	}()
	// Whatever happens below, stop the children before the test ends.
	t.Cleanup(func() {
		cancel()
		<-finished
	})

	select {
	case <-ready:
	case <-finished:
		t.Fatalf("Run returned %v before ready; output:\n%s", runErr, out.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("ready was not called; output:\n%s", out.String())
	}

	first := sup.States()
	t.Run("started", func(t *testing.T) {
		fromFile := readStateFile(t, stateFile)
		if len(first) != len(procs) || len(fromFile) != len(procs) {
			t.Errorf("states = %+v, state file = %+v; want %d children in both", first, fromFile, len(procs))
		}
		for _, p := range procs {
			if !healthyAtReady[p.Name] {
				t.Errorf("%s was not healthy when ready was called", p.Name)
			}
			st := first[p.Name]
			if st.PID <= 0 || st.Addr != p.Addr || st.Debug != p.DebugAddr || st.Restarts != 0 || !alive(st.PID) {
				t.Errorf("%s state = %+v (alive %v), want a live pid, addr %s, debug addr %s and no restarts", p.Name, st, alive(st.PID), p.Addr, p.DebugAddr)
			}
			if fromFile[p.Name] != st {
				t.Errorf("%s in the state file = %+v, want %+v", p.Name, fromFile[p.Name], st)
			}
		}
	})

	t.Run("output is prefixed", func(t *testing.T) {
		tests := []struct{ name, line string }{
			{"users", "users    | hello from users"},
			{"products", "products | hello from products"},
		}
		for _, tt := range tests {
			eventually(t, "the output line "+tt.line, func() bool { return count(out.String(), tt.line) == 1 })
		}
	})

	if t.Failed() {
		t.FailNow()
	}
	if err := syscall.Kill(first[victim.Name].PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, victim.Name+" to be restarted", func() bool { return sup.States()[victim.Name].Restarts == 1 })
	eventually(t, victim.Name+" to be healthy again", func() bool { return healthy(victim.HealthURL) })
	eventually(t, "the killed process to be reaped", func() bool { return gone(first[victim.Name].PID) })
	second := sup.States()

	t.Run("restart", func(t *testing.T) {
		if got := second[victim.Name]; got.PID == first[victim.Name].PID || got.PID <= 0 || !alive(got.PID) {
			t.Errorf("%s after SIGKILL = %+v, want a new live pid (was %d)", victim.Name, got, first[victim.Name].PID)
		}
		if got := second[bystander.Name]; got != first[bystander.Name] || !alive(got.PID) {
			t.Errorf("%s after the other was killed = %+v, want it untouched: %+v", bystander.Name, got, first[bystander.Name])
		}
		if got := readStateFile(t, stateFile); got[victim.Name] != second[victim.Name] || got[bystander.Name] != second[bystander.Name] {
			t.Errorf("state file = %+v, want %+v", got, second)
		}
		line := fmt.Sprintf("%-8s | hello from %s", victim.Name, victim.Name)
		eventually(t, "the restarted child's greeting", func() bool { return count(out.String(), line) == 2 })
	})

	cancel()
	select {
	case <-finished:
		if runErr != nil {
			t.Errorf("Run after cancel = %v, want nil", runErr)
		}
		if readyCalls != 1 {
			t.Errorf("ready was called %d times, want once", readyCalls)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}

	t.Run("stopped", func(t *testing.T) {
		for _, p := range procs {
			pid := second[p.Name].PID
			if !gone(pid) {
				t.Errorf("%s (pid %d) still exists after Run returned: kill(pid, 0) = %v", p.Name, pid, syscall.Kill(pid, 0))
			}
			// SIGTERM, not the 10s SIGKILL, stopped it.
			if line := fmt.Sprintf("%-8s | bye from %s", p.Name, p.Name); count(out.String(), line) != 1 {
				t.Errorf("output has no %q line, so %s was not stopped by SIGTERM:\n%s", line, p.Name, out.String())
			}
		}
	})
}
