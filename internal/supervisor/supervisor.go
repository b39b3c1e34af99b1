// Package supervisor runs microshop's services as separate OS processes on one
// machine: it starts each one, prefixes its output lines with its name, restarts
// it when it dies, and stops them all when its context ends.
package supervisor

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"
)

// Process describes one child process.
type Process struct {
	Name      string
	Args      []string // arguments after the executable
	Env       []string // added to the supervisor's environment (secrets go here, not in Args)
	Addr      string   // host:port it serves on, for the state file
	DebugAddr string   // host:port of its pprof endpoints, if any, for the state file
	HealthURL string   // polled until it answers 200; empty: until Addr accepts TCP connections
}

// Supervisor starts and watches processes.
type Supervisor struct {
	Executable   string        // the binary to run (normally os.Executable())
	Env          []string      // the children's environment
	Output       io.Writer     // where prefixed output lines go
	Log          *slog.Logger  // supervisor events
	RestartDelay time.Duration // wait before restarting a dead child (default 1s)
	StateFile    string        // if set, rewritten with each child's pid and address

	mu    sync.Mutex
	out   sync.Mutex
	state map[string]State
}

// State is what the state file records for one child.
type State struct {
	PID      int    `json:"pid"`
	Addr     string `json:"addr"`
	Debug    string `json:"debug_addr,omitempty"`
	Restarts int    `json:"restarts"`
}

// Run starts every process, waits until each answers its health URL, calls
// ready, and then keeps them running, restarting any that exits, until ctx is
// done. It then sends SIGTERM to all and waits for them (SIGKILL after 10s).
func (s *Supervisor) Run(ctx context.Context, procs []Process, ready func()) error {
	if s.RestartDelay == 0 {
		s.RestartDelay = time.Second
	}
	s.state = map[string]State{}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Go(func() { s.keep(ctx, p) })
	}
	healthy := make(chan error, 1)
	go func() { healthy <- s.waitHealthy(ctx, procs) }()
	select {
	case err := <-healthy:
		if err != nil {
			cancel() // stop the children that did start
			wg.Wait()
			return err
		}
		if ready != nil {
			ready()
		}
	case <-ctx.Done():
	}
	wg.Wait()
	return nil
}

// keep runs p until ctx is done, restarting it whenever it exits.
func (s *Supervisor) keep(ctx context.Context, p Process) {
	for restarts := 0; ; restarts++ {
		start := time.Now()
		err := s.runOnce(ctx, p, restarts)
		if ctx.Err() != nil {
			return
		}
		s.Log.Warn("process exited; restarting", "service", p.Name, "err", err, "after", s.RestartDelay)
		delay := s.RestartDelay
		if time.Since(start) < time.Second && restarts > 3 {
			delay = 5 * s.RestartDelay // crash loop: back off
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
	}
}

func (s *Supervisor) runOnce(ctx context.Context, p Process, restarts int) error {
	cmd := exec.CommandContext(ctx, s.Executable, p.Args...)
	cmd.Env = append(slices.Clip(s.Env), p.Env...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	setProcAttr(cmd)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.copyLines(p.Name, pr)
	}()
	if err := cmd.Start(); err != nil {
		pw.Close()
		<-done
		return err
	}
	s.record(p, cmd.Process.Pid, restarts)
	err := cmd.Wait()
	pw.Close()
	<-done
	return err
}

// copyLines writes each line of r to the output with a name prefix, so the
// interleaved logs of all services stay readable. Complete lines that arrived
// together go out in one write (under load a service writes many lines between
// two reads of its pipe); none is held back once no other complete line is
// waiting. A line longer than the 64 KiB buffer is cut there, marked with "…".
func (s *Supervisor) copyLines(name string, r io.Reader) {
	br := bufio.NewReaderSize(r, 64<<10)
	prefix := fmt.Sprintf("%-8s | ", name)
	var out []byte
	long := false // inside a line longer than the buffer: its rest is dropped
	for {
		line, err := br.ReadSlice('\n')
		switch {
		case err == bufio.ErrBufferFull:
			if !long {
				out = append(append(append(out, prefix...), line...), "…\n"...)
			}
			long = true
			continue
		case len(line) > 0 && !long:
			out = append(append(out, prefix...), line...)
			if line[len(line)-1] != '\n' {
				out = append(out, '\n')
			}
		}
		if len(line) > 0 && line[len(line)-1] == '\n' {
			long = false
		}
		if len(out) > 0 && (err != nil || !completeLineBuffered(br) || len(out) >= 64<<10) {
			s.out.Lock()
			s.Output.Write(out)
			s.out.Unlock()
			out = out[:0]
		}
		if err != nil {
			return
		}
	}
}

// completeLineBuffered reports whether br holds a whole line already read from
// the pipe, which the next ReadSlice returns without waiting.
func completeLineBuffered(br *bufio.Reader) bool {
	b, _ := br.Peek(br.Buffered())
	return bytes.IndexByte(b, '\n') >= 0
}

func (s *Supervisor) record(p Process, pid, restarts int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state[p.Name] = State{PID: pid, Addr: p.Addr, Debug: p.DebugAddr, Restarts: restarts}
	if s.StateFile == "" {
		return
	}
	b, _ := json.MarshalIndent(s.state, "", "  ")
	tmp := s.StateFile + ".tmp"
	if err := os.MkdirAll(filepath.Dir(tmp), 0o750); err == nil {
		if err := os.WriteFile(tmp, b, 0o600); err == nil {
			os.Rename(tmp, s.StateFile)
		}
	}
}

// States returns a copy of the children's current state.
func (s *Supervisor) States() map[string]State {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]State, len(s.state))
	for k, v := range s.state {
		out[k] = v
	}
	return out
}

func (s *Supervisor) waitHealthy(ctx context.Context, procs []Process) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	for _, p := range procs {
		for {
			if ok := probe(ctx, client, p); ok {
				break
			}
			select {
			case <-ctx.Done():
				if errors.Is(ctx.Err(), context.DeadlineExceeded) {
					return fmt.Errorf("supervisor: %s did not become healthy (%s%s)", p.Name, p.HealthURL, p.Addr)
				}
				return nil
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	return nil
}

func probe(ctx context.Context, c *http.Client, p Process) bool {
	if p.HealthURL == "" {
		conn, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", p.Addr)
		if err != nil {
			return false
		}
		conn.Close()
		return true
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.HealthURL, nil)
	if err != nil {
		return false
	}
	resp, err := c.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
