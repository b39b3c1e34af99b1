package orders

import (
	"context"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/microshop/microshop/internal/events"
	"github.com/microshop/microshop/internal/platform/broker"
	"github.com/microshop/microshop/internal/platform/fault"
	"github.com/microshop/microshop/internal/platform/page"
	"github.com/microshop/microshop/internal/products"
)

// Reasons recorded on orders that did not go through.
const (
	ExpiredReason        = "checkout did not complete in time"
	CancelledReason      = "cancelled by the customer"
	AdminCancelledReason = "cancelled by an administrator"
	// RejectedReason is the reason of a rejection whose event gave none.
	RejectedReason = "insufficient stock"
)

// DefaultCheckoutTimeout is how long a pending order waits for products to
// reserve its stock before it expires.
const DefaultCheckoutTimeout = 30 * time.Second

// sweepBatch is how many pending orders ExpirePending reads at a time.
const sweepBatch = 100

// Service implements the orders use cases.
type Service struct {
	store    Store
	users    UserDirectory
	catalog  Catalog
	log      *slog.Logger
	now      func() time.Time
	timeout  time.Duration
	kick     func()
	watchers *notifier
	poll     time.Duration
}

// Option configures a Service.
type Option func(*Service)

// WithCheckoutTimeout sets how long a placed order waits for its stock before
// the sweeper expires it (its deadline is placing time + d); d must be
// positive. The default is DefaultCheckoutTimeout.
func WithCheckoutTimeout(d time.Duration) Option {
	return func(s *Service) {
		if d > 0 {
			s.timeout = d
		}
	}
}

// WithKick sets a function called after every commit that added events to the
// outbox, such as outbox.Relay.Kick, so that they are published at once
// rather than at the relay's next poll. It must not block.
func WithKick(kick func()) Option {
	return func(s *Service) { s.kick = kick }
}

// NewService returns a Service that keeps orders in store and asks users and
// catalog about the rest. A nil log discards.
func NewService(store Store, users UserDirectory, catalog Catalog, log *slog.Logger, opts ...Option) *Service {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{
		store: store, users: users, catalog: catalog, log: log, now: time.Now,
		timeout: DefaultCheckoutTimeout, kick: func() {}, watchers: newNotifier(), poll: WatchPoll,
	}
	for _, o := range opts {
		o(s)
	}
	if s.kick == nil {
		s.kick = func() {}
	}
	return s
}

func (s *Service) timestamp() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// Place places an order: it checks the request, the user and the products, and
// stores the order as pending, with a deadline, together with the
// orders.placed event that asks products to reserve its stock (in one
// transaction). Nothing is reserved here: the order becomes confirmed or
// rejected when products answers, or expired if it has not by the deadline.
// replayed is true when the request repeats an earlier one with the same
// idempotency key: then that order is returned as it is now.
//
// It returns a fault.Invalid error for bad input; a fault.Unprocessable error
// with code "unknown-user", "unknown-product", "mixed-currencies",
// "total-out-of-range" or "idempotency-key-reused"; and the catalog's or the
// users service's error when they cannot answer.
func (s *Service) Place(ctx context.Context, req PlaceRequest) (order Order, replayed bool, err error) {
	if err := req.Validate(); err != nil {
		return Order{}, false, err
	}
	hash := req.hash()
	if req.IdempotencyKey != "" {
		o, err := s.replay(ctx, req.UserID, req.IdempotencyKey, hash)
		if err == nil {
			return o, true, nil
		}
		if !fault.Is(err, fault.NotFound) {
			return Order{}, false, err
		}
	}
	// The user check and the pricing are independent reads of two other
	// services: ask both at once. The user's error wins, as when they ran
	// one after the other.
	var (
		o          Order
		uErr, pErr error
		wg         sync.WaitGroup
	)
	wg.Go(func() { _, uErr = s.users.User(ctx, req.UserID) })
	wg.Go(func() { o, pErr = s.price(ctx, req) })
	wg.Wait()
	if uErr != nil {
		if fault.Is(uErr, fault.NotFound) {
			return Order{}, false, fault.New(fault.Unprocessable, "user %s does not exist", req.UserID).WithCode("unknown-user")
		}
		return Order{}, false, uErr
	}
	if pErr != nil {
		return Order{}, false, pErr
	}
	placed, err := placedEvent(o)
	if err != nil {
		return Order{}, false, err
	}
	var key *IdempotencyKey
	if req.IdempotencyKey != "" {
		key = &IdempotencyKey{UserID: req.UserID, Key: req.IdempotencyKey, RequestHash: hash, OrderID: o.ID, CreatedAt: o.CreatedAt}
	}
	if err := s.store.CreateOrder(ctx, o, key, []broker.Event{placed}); err != nil {
		if fault.CodeOf(err) == CodeKeyExists { // a concurrent request with the same key won
			o, err := s.replay(ctx, req.UserID, req.IdempotencyKey, hash)
			if fault.Is(err, fault.NotFound) {
				return Order{}, false, inProgress()
			}
			return o, err == nil, err
		}
		return Order{}, false, err
	}
	s.committed(o.ID, true, true)
	return o, false, nil
}

// replay returns the order that key produced, as it is now, or a
// fault.NotFound error when the key is unknown.
func (s *Service) replay(ctx context.Context, userID, key, hash string) (Order, error) {
	k, err := s.store.IdempotencyKey(ctx, userID, key)
	if err != nil {
		return Order{}, err
	}
	if k.RequestHash != hash {
		return Order{}, fault.New(fault.Unprocessable, "this Idempotency-Key was already used for a different request").WithCode("idempotency-key-reused")
	}
	return s.store.Order(ctx, k.OrderID)
}

func inProgress() error {
	return &fault.Error{Kind: fault.Conflict, Code: "request-in-progress", RetryAfter: time.Second,
		Msg: "a request with this Idempotency-Key is in progress"}
}

// price builds the pending order with the catalog's current prices.
func (s *Service) price(ctx context.Context, req PlaceRequest) (Order, error) {
	ids := make([]string, len(req.Lines))
	for i, l := range req.Lines {
		ids[i] = l.ProductID
	}
	found, err := s.catalog.Products(ctx, ids)
	if err != nil {
		return Order{}, err
	}
	byID := make(map[string]products.Product, len(found))
	for _, p := range found {
		byID[p.ID] = p
	}
	now := s.timestamp()
	o := Order{
		ID:        uuid.Must(uuid.NewV7()).String(),
		UserID:    req.UserID,
		Status:    StatusPending,
		Lines:     make([]Line, len(req.Lines)),
		Deadline:  now.Add(s.timeout),
		CreatedAt: now,
		UpdatedAt: now,
	}
	var missing []fault.FieldError
	for i, l := range req.Lines {
		p, ok := byID[l.ProductID]
		if !ok {
			missing = append(missing, fault.FieldError{Location: "body.lines[" + strconv.Itoa(i) + "].product_id", Message: "product " + l.ProductID + " does not exist"})
			continue
		}
		if o.Total.Currency == "" {
			o.Total.Currency = p.Price.Currency
		}
		if p.Price.Currency != o.Total.Currency {
			return Order{}, fault.New(fault.Unprocessable, "all products of an order must have the same currency").WithCode("mixed-currencies")
		}
		if p.Price.Amount < 0 || p.Price.Amount > (math.MaxInt64-o.Total.Amount)/int64(l.Quantity) {
			return Order{}, fault.New(fault.Unprocessable, "the order total is out of range").WithCode("total-out-of-range")
		}
		o.Lines[i] = Line{ProductID: l.ProductID, Quantity: l.Quantity, UnitPrice: p.Price}
		o.Total.Amount += p.Price.Amount * int64(l.Quantity)
	}
	if len(missing) > 0 {
		return Order{}, &fault.Error{Kind: fault.Unprocessable, Code: "unknown-product", Msg: missing[0].Message, Fields: missing}
	}
	return o, nil
}

// placedEvent returns the orders.placed event of the new order o.
func placedEvent(o Order) (broker.Event, error) {
	d := events.OrderPlacedData{OrderID: o.ID, UserID: o.UserID, Deadline: o.Deadline, Lines: make([]events.Line, len(o.Lines))}
	for i, l := range o.Lines {
		d.Lines[i] = events.Line{ProductID: l.ProductID, Quantity: l.Quantity}
	}
	return broker.NewEvent(events.SourceOrders, events.OrderPlaced, o.ID, d)
}

// change returns the Change that applies tr to an order with reason, after
// check (when not nil) has accepted the order, and emits the event Apply
// names. *from is set to the status the order had.
func (s *Service) change(tr Trigger, reason func(Order) string, check func(Order) error, from *string) Change {
	return func(o *Order) ([]broker.Event, error) {
		*from = o.Status
		if check != nil {
			if err := check(*o); err != nil {
				return nil, err
			}
		}
		r := ""
		if reason != nil {
			r = reason(*o)
		}
		typ, err := o.Apply(tr, r, s.timestamp())
		if err != nil || typ == "" {
			return nil, err
		}
		e, err := broker.NewEvent(events.SourceOrders, typ, o.ID, events.OrderData{OrderID: o.ID, Reason: o.Reason})
		if err != nil {
			return nil, err
		}
		return []broker.Event{e}, nil
	}
}

// committed tells the relay (when emitted) and the watchers of the order (when
// its status changed) that a transaction has committed.
func (s *Service) committed(id string, emitted, statusChanged bool) {
	if emitted {
		s.kick()
	}
	if statusChanged {
		s.watchers.notify(id)
	}
}

// update applies tr to the order id in one transaction with the event that
// announces it; see Order.Apply.
func (s *Service) update(ctx context.Context, id string, tr Trigger, reason func(Order) string, check func(Order) error) (Order, error) {
	var from string
	o, err := s.store.UpdateOrder(ctx, id, s.change(tr, reason, check, &from))
	if err != nil {
		return Order{}, err
	}
	s.committed(id, o.Status != from, o.Status != from)
	return o, nil
}

// Cancel cancels the pending or confirmed order id for v, its owner or an
// admin, and emits orders.cancelled so that products gives back its stock. An
// order v may not see is a fault.NotFound error, as for an unknown one; an
// order that is rejected, expired or cancelled already is a fault.Conflict
// error with code CodeIllegalTransition.
func (s *Service) Cancel(ctx context.Context, id string, v Viewer) (Order, error) {
	if !ValidID(id) {
		return Order{}, OrderNotFound()
	}
	reason := func(o Order) string {
		if v.UserID == o.UserID {
			return CancelledReason
		}
		return AdminCancelledReason
	}
	check := func(o Order) error {
		if !v.CanSee(o.UserID) {
			return OrderNotFound()
		}
		return nil
	}
	return s.update(ctx, id, TriggerCancel, reason, check)
}

// Order returns the order with id, or a fault.NotFound error.
func (s *Service) Order(ctx context.Context, id string) (Order, error) {
	if !ValidID(id) {
		return Order{}, OrderNotFound()
	}
	return s.store.Order(ctx, id)
}

// ListByUser returns one page of the user's orders, newest first: a customer
// looks for recent orders. It returns a fault.Invalid error for a malformed user
// id or cursor.
func (s *Service) ListByUser(ctx context.Context, userID, cursor string, limit int) (page.Page[Order], error) {
	if !ValidID(userID) {
		return page.Page[Order]{}, fault.Invalidf("query.user_id", "user_id must be a UUID")
	}
	before, err := page.Decode(cursor)
	if err != nil {
		return page.Page[Order]{}, err
	}
	limit = page.Limit(limit)
	rows, err := s.store.OrdersByUser(ctx, userID, before, limit+1)
	if err != nil {
		return page.Page[Order]{}, err
	}
	return page.Of(rows, limit, func(o Order) string { return o.ID }), nil
}

// ExpirePending expires the pending orders whose deadline has passed, each
// with the orders.expired event that tells products to give back whatever it
// holds, or will hold, for them; it returns how many it expired. A store error
// stops the run and is returned with the count so far.
//
// Several sweepers may run at once (one per replica): each order is expired
// by one of them, and announced once.
func (s *Service) ExpirePending(ctx context.Context) (int, error) {
	cutoff := s.now().UTC()
	reason := func(Order) string { return ExpiredReason }
	n, after := 0, ""
	for {
		ids, err := s.store.PendingOrders(ctx, cutoff, after, sweepBatch)
		if err != nil {
			return n, err
		}
		for _, id := range ids {
			_, err := s.update(ctx, id, TriggerExpire, reason, nil)
			switch {
			case fault.CodeOf(err) == CodeIllegalTransition, fault.Is(err, fault.NotFound):
				// Confirmed, rejected, cancelled or expired meanwhile.
			case err != nil:
				return n, err
			default:
				n++
			}
		}
		if len(ids) < sweepBatch {
			return n, nil
		}
		after = ids[len(ids)-1]
	}
}

// RunSweeper runs ExpirePending now and then every every (which must be
// positive), until ctx is done. Failures are logged and retried on the next
// run.
func (s *Service) RunSweeper(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		n, err := s.ExpirePending(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "sweeper failed", "err", err)
		}
		if n > 0 {
			s.log.InfoContext(ctx, "sweeper expired orders", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
