package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/microshop/microshop/internal/bench"
	"github.com/microshop/microshop/internal/supervisor"
)

type benchOptions struct {
	rate        float64
	duration    time.Duration
	warmup      time.Duration
	concurrency int
	mix         string
	customers   int
	findMax     bool
	step        time.Duration
	p99Bound    time.Duration
	refine      int
	recover     time.Duration
	markdown    string
	idle        time.Duration
}

// benchAdminEmail is the admin the bench gives the system it starts, so that
// the load's set-up can restock the catalog.
const benchAdminEmail = "admin@example.com"

func benchCommand(getenv func(string) string, stdout, stderr io.Writer) *cobra.Command {
	var o benchOptions
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Start the system on this machine as services and then as a monolith, load each the same way, and compare them",
		Long: `bench starts this binary's run command with a fresh data directory, first as
services and then with --monolith, each time with the gateway's rate limits off
and --log-level warn. For each it measures the time from the process start to
the ready line, the resident memory of all the system's processes after an idle
pause (--idle, 2 s), the latency of an open-loop load at --rate for --duration
(after --warmup) and the CPU time of all the system's processes per 1,000
requests. Memory is given as the sum of the processes' RSS, which counts the
pages they share (such as the executable's code) once per process, and as the
sum of their PSS, which splits shared pages between them.
It prints the comparison as Markdown, or writes it to --markdown FILE.
Memory and CPU are read from /proc: on other systems they show as n/a.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBench(cmd.Context(), &o, getenv, stdout, stderr)
		},
	}
	fs := cmd.Flags()
	fs.Float64Var(&o.rate, "rate", 500, "requests per second (the starting rate with --find-max)")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "measured duration")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "warm-up at --rate before the measured part, not reported")
	fs.IntVar(&o.concurrency, "concurrency", 64, "cap on requests in flight (connections)")
	fs.StringVar(&o.mix, "mix", "read=100", "operations and their weights, as for load (read: the enriched order)")
	fs.IntVar(&o.customers, "customers", 20, "customers registered for the test")
	fs.BoolVar(&o.findMax, "find-max", false, "after the measured part, search the highest rate held as load --find-max does")
	fs.DurationVar(&o.step, "step", 5*time.Second, "duration of each --find-max step")
	fs.DurationVar(&o.p99Bound, "p99-bound", 25*time.Millisecond, "the p99 a --find-max step must stay under")
	findMaxFlags(fs, &o.refine, &o.recover)
	fs.StringVar(&o.markdown, "markdown", "", "write the Markdown to this file instead of stdout")
	fs.DurationVar(&o.idle, "idle", 2*time.Second, "idle pause after the ready line before memory is read")
	return cmd
}

func runBench(ctx context.Context, o *benchOptions, getenv func(string) string, stdout, stderr io.Writer) error {
	if _, _, err := parseMix(o.mix); err != nil {
		return err
	}
	if o.customers < 1 {
		return errors.New("--customers must be at least 1")
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	meta := bench.Meta{Date: time.Now(), Cores: runtime.NumCPU(), Platform: runtime.GOOS + "/" + runtime.GOARCH,
		Command: commandLine(os.Args), Rate: o.rate, Duration: o.duration, Warmup: o.warmup, Idle: o.idle, Mix: o.mix, FindMax: o.findMax, P99Bound: o.p99Bound}
	var modes []bench.Mode
	for _, name := range []string{"services", "monolith"} {
		fmt.Fprintf(stderr, "bench: %s\n", name)
		m, err := benchMode(ctx, exe, name, o, stderr)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		modes = append(modes, m)
	}
	out := stdout
	if o.markdown != "" {
		f, err := os.Create(o.markdown)
		if err != nil {
			return err
		}
		defer f.Close()
		out = f
	}
	if err := bench.WriteMarkdown(out, meta, modes); err != nil {
		return err
	}
	if o.markdown != "" {
		fmt.Fprintf(stderr, "bench: wrote %s\n", o.markdown)
		return bench.WriteMarkdown(stdout, meta, modes)
	}
	return nil
}

// commandLine quotes args for a shell, for the record of the run.
func commandLine(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$`*?;&|<>()") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}

// childEnviron is this process's environment for the system the bench starts:
// marked as a child (so a test binary acts as microshop), with a fresh admin,
// and without settings that would point it at existing data or brokers.
func childEnviron(adminPassword string) []string {
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		return strings.HasSuffix(k, "DATABASE_URL") && strings.HasPrefix(k, "MICROSHOP_") ||
			k == "MICROSHOP_NATS_URL" || k == "MICROSHOP_ADMIN_EMAIL" || k == "MICROSHOP_ADMIN_PASSWORD"
	})
	return append(env, childEnv, "MICROSHOP_ADMIN_EMAIL="+benchAdminEmail, "MICROSHOP_ADMIN_PASSWORD="+adminPassword)
}

// tail keeps the last bytes written to it, to show when the system fails.
type tail struct {
	mu sync.Mutex
	b  []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if n := len(t.b) - 16<<10; n > 0 {
		t.b = t.b[n:]
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// benchMode starts the system in one mode with fresh data, measures it and
// stops it.
func benchMode(ctx context.Context, exe, mode string, o *benchOptions, stderr io.Writer) (m bench.Mode, err error) {
	m.Name = mode
	dir, err := os.MkdirTemp("", "microshop-bench-")
	if err != nil {
		return m, err
	}
	defer os.RemoveAll(dir)
	// The system runs from a copy of the executable: run from the same file,
	// its processes would share the code's pages with this one, which would
	// take a share of their PSS.
	bin := filepath.Join(dir, "bin", filepath.Base(exe))
	if err := copyExecutable(exe, bin); err != nil {
		return m, err
	}
	args := []string{"run", "--addr", "127.0.0.1:0", "--data-dir", dir, "--log-level", "warn",
		"--rate-per-client", "-1", "--rate-per-user", "-1", "--auth-per-minute", "-1"}
	if mode == "monolith" {
		args = append(args, "--monolith")
	}
	pass := newPassword()
	cmd := exec.Command(bin, args...)
	cmd.Env = childEnviron(pass)
	logs := &tail{}
	cmd.Stderr = logs
	pr, err := cmd.StdoutPipe()
	if err != nil {
		return m, err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return m, err
	}
	exited := make(chan error, 1)
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "microshop ready at "); ok {
				select {
				case ready <- strings.Fields(rest)[0]:
				default:
				}
			}
		}
		io.Copy(io.Discard, pr)
		exited <- cmd.Wait()
	}()
	defer func() {
		if serr := stopSystem(cmd, exited); serr != nil && err == nil {
			err = fmt.Errorf("stop: %w\n%s", serr, logs)
		}
	}()
	var url string
	select {
	case url = <-ready:
		m.Ready = time.Since(start)
	case werr := <-exited:
		exited <- werr
		return m, fmt.Errorf("run exited before it was ready: %v\n%s", werr, logs)
	case <-time.After(2 * time.Minute):
		return m, fmt.Errorf("not ready after 2 minutes\n%s", logs)
	case <-ctx.Done():
		return m, ctx.Err()
	}
	fmt.Fprintf(stderr, "bench: %s ready at %s after %v\n", mode, url, m.Ready.Round(time.Millisecond))

	// procs returns the system's pids, the run process first, and their names.
	procs := func() ([]int, map[int]string, error) {
		ps, names := []int{cmd.Process.Pid}, map[int]string{cmd.Process.Pid: "run"}
		if mode == "monolith" {
			return ps, names, nil
		}
		b, err := os.ReadFile(filepath.Join(dir, "run", "services.json"))
		if err != nil {
			return nil, nil, err
		}
		var st map[string]supervisor.State
		if err := json.Unmarshal(b, &st); err != nil {
			return nil, nil, fmt.Errorf("services.json: %w", err)
		}
		for name, s := range st {
			ps = append(ps, s.PID)
			names[s.PID] = name
		}
		slices.Sort(ps[1:])
		return ps, names, nil
	}
	usage := func() ([]int, bench.Usage, bool) {
		if !bench.Supported {
			return nil, bench.Usage{}, false
		}
		ps, names, err := procs()
		if err == nil {
			var u bench.Usage
			if u, err = bench.Read(ps); err == nil {
				for i := range u.Each {
					u.Each[i].Name = names[u.Each[i].PID]
				}
				return ps, u, true
			}
		}
		fmt.Fprintf(stderr, "bench: %s: reading the processes: %v\n", mode, err)
		return nil, bench.Usage{}, false
	}

	select {
	case <-time.After(o.idle):
	case <-ctx.Done():
		return m, ctx.Err()
	}
	_, m.Idle, m.IdleOK = usage()
	if m.IdleOK {
		fmt.Fprintf(stderr, "bench: %s idle: RSS %.1f MiB (sum of VmRSS), PSS %.1f MiB (sum of Pss) over %d processes\n",
			mode, float64(m.Idle.RSS)/(1<<20), float64(m.Idle.PSS)/(1<<20), m.Idle.Procs)
	}

	lo := &loadOptions{url: url, rate: o.rate, duration: o.duration, concurrency: o.concurrency, mix: o.mix,
		customers: o.customers, timeout: 10 * time.Second, wait: true, follow: followEvents, adminEmail: benchAdminEmail, adminPass: pass,
		step: o.step, p99Bound: o.p99Bound, refine: o.refine, recover: o.recover}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 4 * o.concurrency
	tr.MaxIdleConnsPerHost = 4 * o.concurrency
	defer tr.CloseIdleConnections()
	c := &loadClient{base: url, http: &http.Client{Transport: tr, Timeout: lo.timeout}}
	f, err := setup(ctx, c, lo, stderr)
	if err != nil {
		return m, fmt.Errorf("set-up: %w\n%s", err, logs)
	}
	if o.warmup > 0 {
		if _, err := loadOnce(ctx, c, f, lo, o.rate, o.warmup, stderr); err != nil {
			return m, err
		}
	}
	// The window: the CPU time of the same processes before and after.
	psBefore, before, okBefore := usage()
	genBefore, genErrBefore := bench.Read([]int{os.Getpid()}) // the load generator: this process
	if m.Load, err = loadOnce(ctx, c, f, lo, o.rate, o.duration, stderr); err != nil {
		return m, err
	}
	genAfter, genErrAfter := bench.Read([]int{os.Getpid()})
	psAfter, after, okAfter := usage()
	if genErrBefore == nil && genErrAfter == nil {
		m.GenTicks, m.GenOK = genAfter.Ticks-genBefore.Ticks, true
	}
	switch {
	case !okBefore || !okAfter:
	case !slices.Equal(psBefore, psAfter):
		fmt.Fprintf(stderr, "bench: %s: a process was restarted during the measured window; CPU not reported\n", mode)
	default:
		m.CPUTicks, m.CPUOK = after.Ticks-before.Ticks, true
	}
	if ctx.Err() != nil {
		return m, ctx.Err()
	}
	if o.findMax {
		if m.MaxRate, _, err = searchMax(ctx, c, f, lo, stderr, nil); err != nil {
			return m, err
		}
	}
	return m, nil
}

// copyExecutable copies the file at src to dst (0700), creating dst's directory.
func copyExecutable(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o700)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// stopSystem interrupts the run process, as Ctrl-C would, and waits for it;
// it is killed if it has not stopped after 30 s.
func stopSystem(cmd *exec.Cmd, exited chan error) error {
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		cmd.Process.Kill()
	}
	select {
	case err := <-exited:
		return err
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-exited
		return errors.New("did not stop within 30 s of SIGINT; killed")
	}
}
