package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/microshop/microshop/internal/loadgen"
)

type loadOptions struct {
	url          string
	rate         float64
	duration     time.Duration
	warmup       time.Duration
	concurrency  int
	mix          string
	customers    int
	timeout      time.Duration
	wait         bool
	follow       string
	jsonOut      bool
	maxErrorRate float64
	adminEmail   string
	adminPass    string
	findMax      bool
	step         time.Duration
	p99Bound     time.Duration
	refine       int           // --find-max bisection steps after the first failure
	recover      time.Duration // --find-max pause after a failed step
}

func loadCommand(getenv func(string) string, stdout, stderr io.Writer) *cobra.Command {
	var o loadOptions
	cmd := &cobra.Command{
		Use:   "load",
		Short: "Load-test a running microshop through its gateway: open loop, fixed arrival rate, latency from the intended send time",
		Long: `load sends requests at a fixed rate (open loop) whatever the server does and
measures each latency from the moment the request was meant to go, so a slow
server shows as high latency rather than as a lower rate. Turn the gateway's
rate limits off for load tests:
  microshop run --rate-per-client -1 --rate-per-user -1 --auth-per-minute -1

Operations for --mix: browse (GET /products?limit=20), view (GET /products/{id}),
login (POST /auth/login), order (POST /orders, then wait for the saga's
decision unless --wait=false), read (GET /orders/{id}, enriched).

An order is followed (--follow) with its event stream (GET /orders/{id}/events,
one request per order) or by polling the enriched read (GET /orders/{id}); the
requests made to follow orders are counted under "checkout follow requests".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runLoad(cmd.Context(), &o, stdout, stderr)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&o.url, "url", "http://127.0.0.1:8080", "the gateway")
	fs.Float64Var(&o.rate, "rate", 100, "requests per second (the starting rate with --find-max)")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "measured duration")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "warm-up before the measured part, not reported")
	fs.IntVar(&o.concurrency, "concurrency", 64, "cap on requests in flight (connections); a request over the cap waits and counts as late")
	fs.StringVar(&o.mix, "mix", "browse=40,view=30,read=20,order=10", "operations and their weights")
	fs.IntVar(&o.customers, "customers", 20, "customers registered for the test")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "timeout of one request")
	fs.BoolVar(&o.wait, "wait", true, "after each order, follow it (--follow) until the saga has decided and report placed→confirmed latency")
	fs.StringVar(&o.follow, "follow", followEvents, "how --wait follows an order: events (its Server-Sent Events stream) or poll (the enriched read, 2 ms doubling to 50 ms)")
	fs.BoolVar(&o.jsonOut, "json", false, "write the report as JSON to stdout")
	fs.Float64Var(&o.maxErrorRate, "max-error-rate", 0.01, "fail when more than this fraction of requests fail")
	fs.StringVar(&o.adminEmail, "admin-email", getenv("MICROSHOP_ADMIN_EMAIL"), "an admin, to restock the catalog before the test (MICROSHOP_ADMIN_EMAIL)")
	fs.StringVar(&o.adminPass, "admin-password", getenv("MICROSHOP_ADMIN_PASSWORD"), "the admin's password (MICROSHOP_ADMIN_PASSWORD)")
	fs.BoolVar(&o.findMax, "find-max", false, "step the rate up ×1.5 from --rate until p99 exceeds --p99-bound or errors exceed 0.1%, bisect (--refine), and report the highest rate that held")
	fs.DurationVar(&o.step, "step", 5*time.Second, "duration of each --find-max step")
	fs.DurationVar(&o.p99Bound, "p99-bound", 25*time.Millisecond, "the p99 a --find-max step must stay under")
	findMaxFlags(fs, &o.refine, &o.recover)
	return cmd
}

// findMaxFlags adds the flags that refine a --find-max search (load and bench).
func findMaxFlags(fs *pflag.FlagSet, refine *int, recover *time.Duration) {
	fs.IntVar(refine, "refine", 3, "after the first --find-max step that fails, this many steps bisect between the highest rate held and the lowest that failed")
	fs.DurationVar(recover, "recover", 3*time.Second, "pause after a --find-max step that failed, for the backlog to drain")
}

// parseMix reads "browse=50,view=30" into names and weights, in order.
func parseMix(s string) ([]string, []int, error) {
	var names []string
	var weights []int
	seen := map[string]bool{}
	for part := range strings.SplitSeq(s, ",") {
		name, w, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, nil, fmt.Errorf("mix %q: want name=weight", part)
		}
		n, err := strconv.Atoi(w)
		if err != nil || n < 0 {
			return nil, nil, fmt.Errorf("mix %q: weight must be a whole number ≥ 0", part)
		}
		switch name {
		case "browse", "view", "login", "order", "read":
		default:
			return nil, nil, fmt.Errorf("mix: unknown operation %q (browse, view, login, order, read)", name)
		}
		if seen[name] {
			return nil, nil, fmt.Errorf("mix: %s twice", name)
		}
		seen[name] = true
		names = append(names, name)
		weights = append(weights, n)
	}
	return names, weights, nil
}

// loadClient talks to the gateway.
type loadClient struct {
	base string
	http *http.Client
}

func (c *loadClient) do(ctx context.Context, method, path, token string, body any, headers ...string) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

type loadCustomer struct{ email, password, token string }

type loadOrder struct{ id, token string }

// loadFixture is what the set-up phase prepared.
type loadFixture struct {
	customers []loadCustomer
	products  []string
	mu        sync.Mutex
	orders    []loadOrder
}

func (f *loadFixture) addOrder(o loadOrder) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.orders) < 1000 {
		f.orders = append(f.orders, o)
	}
}

func (f *loadFixture) order(r *rand.Rand) loadOrder {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.orders[r.IntN(len(f.orders))]
}

// setup registers and logs in the customers, reads the catalog, restocks it
// when an admin is given, and places one order per customer to read.
func setup(ctx context.Context, c *loadClient, o *loadOptions, log io.Writer) (*loadFixture, error) {
	f := &loadFixture{customers: make([]loadCustomer, o.customers)}
	run := fmt.Sprintf("%d", time.Now().UnixNano())
	errc := make(chan error, o.customers)
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i := range f.customers {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			cu := loadCustomer{email: fmt.Sprintf("load-%s-%d@example.com", run, i), password: newPassword()}
			st, b, err := c.do(ctx, "POST", "/api/v1/auth/register", "", map[string]string{"name": fmt.Sprintf("Load %d", i), "email": cu.email, "password": cu.password})
			if err != nil || st != http.StatusCreated {
				errc <- fmt.Errorf("register %s: %d %s %v", cu.email, st, b, err)
				return
			}
			if cu.token, err = loginToken(ctx, c, cu.email, cu.password); err != nil {
				errc <- err
				return
			}
			f.customers[i] = cu
		})
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return nil, err
	}
	var page struct {
		Items []struct {
			ID    string `json:"id"`
			Stock int    `json:"stock"`
		} `json:"items"`
	}
	st, b, err := c.do(ctx, "GET", "/api/v1/products?limit=100", "", nil)
	if err != nil || st != http.StatusOK || json.Unmarshal(b, &page) != nil || len(page.Items) == 0 {
		return nil, fmt.Errorf("catalog: %d %s %v", st, b, err)
	}
	for _, p := range page.Items {
		f.products = append(f.products, p.ID)
	}
	if o.adminEmail != "" && o.adminPass != "" {
		tok, err := loginToken(ctx, c, o.adminEmail, o.adminPass)
		if err != nil {
			return nil, fmt.Errorf("admin: %w", err)
		}
		for _, id := range f.products {
			if st, b, err := c.do(ctx, "PATCH", "/api/v1/products/"+id, tok, map[string]int{"stock": 1_000_000}); err != nil || st != http.StatusOK {
				return nil, fmt.Errorf("restock %s: %d %s %v", id, st, b, err)
			}
		}
		fmt.Fprintf(log, "restocked %d products\n", len(f.products))
	}
	for i, cu := range f.customers {
		id, st, err := placeOrder(ctx, c, cu.token, f.products[i%len(f.products)])
		if err != nil || st != http.StatusAccepted {
			return nil, fmt.Errorf("order: %d %v", st, err)
		}
		f.addOrder(loadOrder{id: id, token: cu.token})
	}
	fmt.Fprintf(log, "set up %d customers, %d products, %d orders\n", len(f.customers), len(f.products), len(f.orders))
	return f, nil
}

func loginToken(ctx context.Context, c *loadClient, email, password string) (string, error) {
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	st, b, err := c.do(ctx, "POST", "/api/v1/auth/login", "", map[string]string{"email": email, "password": password})
	if err != nil || st != http.StatusOK || json.Unmarshal(b, &tok) != nil {
		return "", fmt.Errorf("login %s: %d %s %v", email, st, b, err)
	}
	return tok.AccessToken, nil
}

func placeOrder(ctx context.Context, c *loadClient, token, product string) (string, int, error) {
	body := map[string]any{"lines": []map[string]any{{"product_id": product, "quantity": 1}}}
	st, b, err := c.do(ctx, "POST", "/api/v1/orders", token, body, "Idempotency-Key", uuid.NewString())
	if err != nil {
		return "", st, err
	}
	var ord struct {
		ID string `json:"id"`
	}
	if st == http.StatusAccepted {
		if err := json.Unmarshal(b, &ord); err != nil {
			return "", st, err
		}
	}
	return ord.ID, st, nil
}

// checkoutStat names the placed→confirmed latencies in the report;
// followStat the requests made to follow orders (polls, or event streams).
const (
	checkoutStat = loadgen.CheckoutStat
	followStat   = loadgen.FollowStat
)

// The ways --follow can follow an order.
const (
	followEvents = "events"
	followPoll   = "poll"
)

// ops builds the operations of the mix. engine is set once the engine exists.
func loadOps(c *loadClient, f *loadFixture, o *loadOptions, engine **loadgen.Engine) ([]loadgen.Op, error) {
	names, weights, err := parseMix(o.mix)
	if err != nil {
		return nil, err
	}
	var rmu sync.Mutex
	r := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	intn := func(n int) int {
		rmu.Lock()
		defer rmu.Unlock()
		return r.IntN(n)
	}
	outcome := func(st int, err error) loadgen.Outcome { return loadgen.Outcome{Status: st, Err: err} }
	var ops []loadgen.Op
	for i, name := range names {
		op := loadgen.Op{Name: name, Weight: weights[i]}
		switch name {
		case "browse":
			op.Do = func(ctx context.Context) loadgen.Outcome {
				st, _, err := c.do(ctx, "GET", "/api/v1/products?limit=20", "", nil)
				return outcome(st, err)
			}
		case "view":
			op.Do = func(ctx context.Context) loadgen.Outcome {
				st, _, err := c.do(ctx, "GET", "/api/v1/products/"+f.products[intn(len(f.products))], "", nil)
				return outcome(st, err)
			}
		case "login":
			op.Do = func(ctx context.Context) loadgen.Outcome {
				cu := f.customers[intn(len(f.customers))]
				st, _, err := c.do(ctx, "POST", "/api/v1/auth/login", "", map[string]string{"email": cu.email, "password": cu.password})
				return outcome(st, err)
			}
		case "read":
			op.Do = func(ctx context.Context) loadgen.Outcome {
				rmu.Lock()
				ord := f.order(r)
				rmu.Unlock()
				st, _, err := c.do(ctx, "GET", "/api/v1/orders/"+ord.id, ord.token, nil)
				return outcome(st, err)
			}
		case "order":
			op.Do = func(ctx context.Context) loadgen.Outcome {
				cu := f.customers[intn(len(f.customers))]
				id, st, err := placeOrder(ctx, c, cu.token, f.products[intn(len(f.products))])
				if err == nil && st == http.StatusAccepted {
					placed := time.Now()
					f.addOrder(loadOrder{id: id, token: cu.token})
					if o.wait && (*engine).Measuring() {
						(*engine).Go(func() { awaitDecision(ctx, c, *engine, o.follow, id, cu.token, placed, o.timeout) })
					}
				}
				return outcome(st, err)
			}
		}
		ops = append(ops, op)
	}
	return ops, nil
}

// awaitDecision follows an order until the saga has decided it and records
// the time from its placement (the 202) to the decision seen; a rejected or
// expired order is recorded under its status, one still pending after 30 s as
// a timeout. Each request it makes is recorded under followStat.
func awaitDecision(ctx context.Context, c *loadClient, e *loadgen.Engine, follow, id, token string, placed time.Time, timeout time.Duration) {
	deadline := placed.Add(30 * time.Second)
	wait := 2 * time.Millisecond
	for time.Now().Before(deadline) && ctx.Err() == nil {
		rctx, cancel := context.WithTimeout(ctx, timeout)
		start := time.Now()
		var status string
		var err error
		if follow == followPoll {
			status, err = pollStatus(rctx, c, id, token)
		} else {
			status, err = streamStatus(rctx, c, id, token)
		}
		cancel()
		e.RecordExtra(followStat, time.Since(start), loadgen.Classify(loadgen.Outcome{Status: http.StatusOK, Err: err}))
		if err == nil && status != "pending" {
			class := ""
			if status != "confirmed" {
				class = status
			}
			e.RecordExtra(checkoutStat, time.Since(placed), class)
			return
		}
		if follow == followPoll || err != nil {
			time.Sleep(wait)
			wait = min(2*wait, 50*time.Millisecond)
		}
	}
	if ctx.Err() == nil {
		e.RecordExtra(checkoutStat, time.Since(placed), loadgen.ClassTimeout)
	}
}

// pollStatus reads the order once (the enriched read) and returns its status.
func pollStatus(ctx context.Context, c *loadClient, id, token string) (string, error) {
	st, b, err := c.do(ctx, "GET", "/api/v1/orders/"+id, token, nil)
	if err != nil {
		return "", err
	}
	var ord struct {
		Status string `json:"status"`
	}
	if st != http.StatusOK {
		return "", fmt.Errorf("read order: status %d", st)
	}
	if err := json.Unmarshal(b, &ord); err != nil {
		return "", fmt.Errorf("read order: %w", err)
	}
	return ord.Status, nil
}

// streamStatus opens the order's event stream and reads it until a status
// other than pending arrives, which it returns; "pending" when the stream
// ends before that.
func streamStatus(ctx context.Context, c *loadClient, id, token string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", c.base+"/api/v1/orders/"+id+"/events", nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.http.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return "", fmt.Errorf("order events: status %d", resp.StatusCode)
	}
	return lastStatus(resp.Body)
}

// lastStatus reads Server-Sent Events from r until a "status" event whose
// order is no longer pending, and returns that status; "pending" when the
// stream ends first.
func lastStatus(r io.Reader) (string, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	event := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			event = ""
		case strings.HasPrefix(line, "event:"):
			event = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:") && event == "status":
			var ord struct {
				Status string `json:"status"`
			}
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data:")), &ord); err != nil {
				return "", fmt.Errorf("order events: %w", err)
			}
			if ord.Status != "pending" {
				return ord.Status, nil
			}
		}
	}
	return "pending", sc.Err()
}

func runLoad(ctx context.Context, o *loadOptions, stdout, stderr io.Writer) error {
	if o.customers < 1 {
		return errors.New("--customers must be at least 1")
	}
	if _, _, err := parseMix(o.mix); err != nil {
		return err
	}
	if o.follow != followEvents && o.follow != followPoll {
		return fmt.Errorf("--follow must be %s or %s, not %q", followEvents, followPoll, o.follow)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 4 * o.concurrency
	tr.MaxIdleConnsPerHost = 4 * o.concurrency
	c := &loadClient{base: strings.TrimSuffix(o.url, "/"), http: &http.Client{Transport: tr, Timeout: o.timeout}}
	defer tr.CloseIdleConnections()
	f, err := setup(ctx, c, o, stderr)
	if err != nil {
		return fmt.Errorf("set-up: %w", err)
	}
	if o.findMax {
		return findMax(ctx, c, f, o, stdout, stderr)
	}
	rep, err := loadOnce(ctx, c, f, o, o.rate, o.duration, stderr)
	if err != nil {
		return err
	}
	if o.jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		rep.Write(stdout)
	}
	if rep.ErrorRate > o.maxErrorRate {
		return fmt.Errorf("error rate %.3f%% above --max-error-rate %.3f%%", 100*rep.ErrorRate, 100*o.maxErrorRate)
	}
	return nil
}

// loadOnce runs the mix at one rate, showing progress on stderr.
func loadOnce(ctx context.Context, c *loadClient, f *loadFixture, o *loadOptions, rate float64, d time.Duration, stderr io.Writer) (loadgen.Report, error) {
	var e *loadgen.Engine
	ops, err := loadOps(c, f, o, &e)
	if err != nil {
		return loadgen.Report{}, err
	}
	e, err = loadgen.New(loadgen.Config{Rate: rate, Duration: d, Warmup: o.warmup, Concurrency: o.concurrency, Ops: ops})
	if err != nil {
		return loadgen.Report{}, err
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		progress(e, stderr, stop)
	}()
	res := e.Run(ctx)
	close(stop)
	<-done
	return res.Report(), nil
}

// progress shows the engine's counters every second: one line rewritten in
// place on a terminal, a line each time otherwise.
func progress(e *loadgen.Engine, w io.Writer, stop <-chan struct{}) {
	tty := false
	if f, ok := w.(*os.File); ok {
		tty = isatty.IsTerminal(f.Fd())
	}
	start := time.Now()
	last, lastSent := start, int64(0)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			if tty {
				fmt.Fprintln(w)
			}
			return
		case now := <-tick.C:
			p := e.Progress()
			line := fmt.Sprintf("%5.1fs  sent %d  ok %d  errors %d  rate %.0f/s  p99 %v",
				now.Sub(start).Seconds(), p.Sent, p.OK, p.Errors, float64(p.Sent-lastSent)/now.Sub(last).Seconds(), p.WindowP99)
			last, lastSent = now, p.Sent
			if tty {
				fmt.Fprintf(w, "\r\033[K%s", line)
			} else {
				fmt.Fprintln(w, line)
			}
		}
	}
}

// maxStep is one step of a --find-max search.
type maxStep struct {
	Rate   float64        `json:"rate"`
	Held   bool           `json:"held"`
	Report loadgen.Report `json:"report"`
}

// searchMax steps the rate up by half each step from o.rate and returns the
// highest rate whose p99 stayed under the bound with under 0.1% errors and
// that the server kept up with (at least 95% of the target rate served),
// calling each after every step.
func searchMax(ctx context.Context, c *loadClient, f *loadFixture, o *loadOptions, stderr io.Writer, each func(maxStep)) (float64, []maxStep, error) {
	var steps []maxStep
	plan := rateSearch{rate: o.rate, refine: o.refine}
	for rate, ok := plan.rate, true; ok && ctx.Err() == nil; {
		fmt.Fprintf(stderr, "step: %.0f req/s\n", rate)
		rep, err := loadOnce(ctx, c, f, o, rate, o.step, stderr)
		if err != nil {
			return plan.best, steps, err
		}
		held := rep.ErrorRate < 0.001 && rep.Total.P99 < float64(o.p99Bound.Microseconds())/1000 &&
			float64(rep.Total.Count) >= 0.95*rate*rep.DurationS
		st := maxStep{Rate: rate, Held: held, Report: rep}
		steps = append(steps, st)
		if each != nil {
			each(st)
		}
		if rate, ok = plan.next(held); ok && !held && o.recover > 0 { // let a backlog drain before the next, lower step
			select {
			case <-ctx.Done():
			case <-time.After(o.recover):
			}
		}
	}
	return plan.best, steps, nil
}

// rateSearch plans the steps of --find-max: the rate grows ×1.5 from the
// first one until a step fails; then refine steps bisect between the highest
// rate held and the lowest that failed, so the answer is within
// (failed-held)/2^refine of the knee instead of a factor of 1.5.
type rateSearch struct {
	rate   float64 // the step being run
	best   float64 // highest rate held so far (0: none)
	failed float64 // lowest rate that failed (0: none yet)
	refine int     // bisection steps left
}

// next records whether the current step held and returns the next rate, or
// false when the search is over.
func (s *rateSearch) next(held bool) (float64, bool) {
	if held {
		s.best = max(s.best, s.rate)
	} else if s.failed == 0 || s.rate < s.failed {
		s.failed = s.rate
	}
	switch {
	case s.failed == 0:
		s.rate *= 1.5
	case s.best == 0 || s.refine <= 0:
		return 0, false // nothing held from the start, or the bracket is narrow enough
	default:
		s.refine--
		s.rate = math.Round((s.best + s.failed) / 2)
		if s.rate <= s.best || s.rate >= s.failed {
			return 0, false
		}
	}
	return s.rate, true
}

// findMax runs searchMax and reports its steps and the highest rate held.
func findMax(ctx context.Context, c *loadClient, f *loadFixture, o *loadOptions, stdout, stderr io.Writer) error {
	best, steps, err := searchMax(ctx, c, f, o, stderr, func(st maxStep) {
		if !o.jsonOut {
			fmt.Fprintf(stdout, "%.0f req/s: ok/s %.0f, p99 %.2f ms, errors %.3f%% — %s\n", st.Rate, st.Report.Total.Throughput,
				st.Report.Total.P99, 100*st.Report.ErrorRate, map[bool]string{true: "held", false: "did not hold"}[st.Held])
		}
	})
	if err != nil {
		return err
	}
	if o.jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			MaxRate float64   `json:"max_rate"`
			Steps   []maxStep `json:"steps"`
		}{best, steps})
	}
	fmt.Fprintf(stdout, "highest rate held: %.0f req/s (p99 < %v, errors < 0.1%%)\n", best, o.p99Bound)
	return nil
}
