// Package loadgen is an open-loop load generator: requests are issued at a
// fixed arrival rate whatever the server does, and each latency is measured
// from the moment the request was meant to be sent, so a slow server cannot
// hide its slowness by slowing the generator down (no coordinated omission).
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Clock is the time source of the engine; tests use a fake one.
type Clock interface {
	Now() time.Time
	// SleepUntil returns at t or later, or when ctx is done.
	SleepUntil(ctx context.Context, t time.Time)
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) SleepUntil(ctx context.Context, t time.Time) {
	d := time.Until(t)
	if d <= 0 {
		return
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
	case <-ctx.Done():
	}
}

// Intended returns the time at which request i (counting from 0) of a run
// started at start with rate requests per second is meant to be sent.
func Intended(start time.Time, rate float64, i int64) time.Time {
	return start.Add(time.Duration(float64(i) * float64(time.Second) / rate))
}

// Outcome is what one request gave.
type Outcome struct {
	Status int   // HTTP status, 0 when there is none
	Err    error // transport error, or nil
}

// Op is one kind of request in the mix.
type Op struct {
	Name   string
	Weight int
	// Do sends one request. It may call Engine.RecordExtra for results that
	// come later (a checkout's confirmation).
	Do func(ctx context.Context) Outcome
}

// Sample is one finished request, given to Config.OnSample.
type Sample struct {
	Op       string
	Index    int64
	Intended time.Time
	Latency  time.Duration // from Intended to the end of the request
	Class    string        // "" for success, else an error class
	Late     bool          // waited for a free slot under the concurrency cap
	Warmup   bool
}

// Config describes a run.
type Config struct {
	Rate        float64       // requests per second
	Duration    time.Duration // measured part
	Warmup      time.Duration // before the measured part, not reported
	Concurrency int           // cap on requests in flight (default 64)
	Ops         []Op
	Clock       Clock          // default the real clock
	Rand        *rand.Rand     // picks ops; default seeded randomly
	OnSample    func(s Sample) // optional, called for every finished request
}

// Engine runs one load test.
type Engine struct {
	cfg   Config
	clock Clock
	total int

	mu     sync.Mutex
	stats  map[string]*Stats // per op, measured part only
	extra  map[string]*Stats // results recorded with RecordExtra
	window *Stats            // since the last Progress call (all ops, warm-up included)

	sent, ok, failed atomic.Int64
	measuring        atomic.Bool
	wg               sync.WaitGroup
}

// New checks cfg and returns an engine.
func New(cfg Config) (*Engine, error) {
	if cfg.Rate <= 0 {
		return nil, errors.New("rate must be positive")
	}
	if cfg.Duration <= 0 {
		return nil, errors.New("duration must be positive")
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 64
	}
	if cfg.Clock == nil {
		cfg.Clock = realClock{}
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	e := &Engine{cfg: cfg, clock: cfg.Clock, stats: map[string]*Stats{}, extra: map[string]*Stats{}, window: NewStats()}
	for _, op := range cfg.Ops {
		if op.Weight < 0 {
			return nil, fmt.Errorf("op %s: negative weight", op.Name)
		}
		e.total += op.Weight
		e.stats[op.Name] = NewStats()
	}
	if e.total == 0 {
		return nil, errors.New("no operation with a positive weight")
	}
	return e, nil
}

func (e *Engine) pick() Op {
	n := e.cfg.Rand.IntN(e.total)
	for _, op := range e.cfg.Ops {
		if n < op.Weight {
			return op
		}
		n -= op.Weight
	}
	panic("unreachable")
}

// Run sends requests until the warm-up and the duration have passed (or ctx
// is done), waits for those in flight, and returns the measured results.
func (e *Engine) Run(ctx context.Context) *Result {
	start := e.clock.Now()
	measureFrom := start.Add(e.cfg.Warmup)
	end := measureFrom.Add(e.cfg.Duration)
	sem := make(chan struct{}, e.cfg.Concurrency)
	for i := int64(0); ; i++ {
		t := Intended(start, e.cfg.Rate, i)
		if !t.Before(end) || ctx.Err() != nil {
			break
		}
		e.clock.SleepUntil(ctx, t)
		if ctx.Err() != nil {
			break
		}
		late := false
		select {
		case sem <- struct{}{}:
		default:
			late = true // the cap is hit: wait, but the latency still counts from t
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			break
		}
		warm := t.Before(measureFrom)
		if !warm {
			e.measuring.Store(true)
		}
		op := e.pick()
		e.sent.Add(1)
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			out := op.Do(ctx)
			lat := e.clock.Now().Sub(t)
			<-sem
			e.record(Sample{Op: op.Name, Index: i, Intended: t, Latency: lat, Class: Classify(out), Late: late, Warmup: warm})
		}()
	}
	e.wg.Wait()
	elapsed := e.clock.Now().Sub(start) - e.cfg.Warmup
	return e.result(min(elapsed, e.cfg.Duration))
}

func (e *Engine) record(s Sample) {
	if s.Class == "" {
		e.ok.Add(1)
	} else {
		e.failed.Add(1)
	}
	e.mu.Lock()
	e.window.Add(s.Latency, s.Class, s.Late)
	if !s.Warmup {
		e.stats[s.Op].Add(s.Latency, s.Class, s.Late)
	}
	e.mu.Unlock()
	if e.cfg.OnSample != nil {
		e.cfg.OnSample(s)
	}
}

// Go runs f as part of the run: Run waits for it before reporting. Ops use it
// for work that outlives their request, such as waiting for a confirmation.
func (e *Engine) Go(f func()) {
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		f()
	}()
}

// Measuring reports whether the warm-up is over.
func (e *Engine) Measuring() bool { return e.measuring.Load() }

// RecordExtra records a result that is not a request of the mix, such as the
// time from a placed order to its confirmation; class "" is a success.
func (e *Engine) RecordExtra(name string, d time.Duration, class string) {
	if !e.measuring.Load() {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.extra[name]
	if s == nil {
		s = NewStats()
		e.extra[name] = s
	}
	s.Add(d, class, false)
}

// Progress is a snapshot for a live display.
type Progress struct {
	Sent, OK, Errors int64
	WindowCount      int64         // requests finished since the previous snapshot
	WindowP99        time.Duration // their p99
}

// Progress returns the counters so far and the p99 of the requests finished
// since the previous call.
func (e *Engine) Progress() Progress {
	e.mu.Lock()
	w := e.window
	e.window = NewStats()
	e.mu.Unlock()
	return Progress{Sent: e.sent.Load(), OK: e.ok.Load(), Errors: e.failed.Load(),
		WindowCount: w.Count, WindowP99: time.Duration(w.hist.ValueAtQuantile(99)) * time.Microsecond}
}

func (e *Engine) result(elapsed time.Duration) *Result {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := &Result{Rate: e.cfg.Rate, Duration: elapsed, Ops: map[string]*Stats{}, Extra: map[string]*Stats{}}
	for _, op := range e.cfg.Ops {
		r.order = append(r.order, op.Name)
		r.Ops[op.Name] = e.stats[op.Name]
	}
	for k, v := range e.extra {
		r.Extra[k] = v
	}
	return r
}

// Error classes.
const (
	Class4xx     = "4xx"
	Class5xx     = "5xx"
	ClassTimeout = "timeout"
	ClassNetwork = "network"
)

// Classify names the error class of an outcome, "" for a success (1xx-3xx).
func Classify(o Outcome) string {
	if o.Err != nil {
		var ne net.Error
		if errors.Is(o.Err, context.DeadlineExceeded) || (errors.As(o.Err, &ne) && ne.Timeout()) {
			return ClassTimeout
		}
		return ClassNetwork
	}
	switch {
	case o.Status >= 500:
		return Class5xx
	case o.Status >= 400:
		return Class4xx
	case o.Status == 0:
		return ClassNetwork
	}
	return ""
}
