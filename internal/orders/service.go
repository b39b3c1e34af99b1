package orders

import (
	"context"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/microshop/microshop/internal/platform/fault"
	"github.com/microshop/microshop/internal/platform/page"
	"github.com/microshop/microshop/internal/products"
	"github.com/microshop/microshop/internal/users"
)

// ExpiredReason is the reason of an order that the sweeper rejected.
const ExpiredReason = "checkout did not complete"

// finishTimeout bounds the work done after a reservation, on a context of its
// own: that work must happen even when the caller has gone.
const finishTimeout = 5 * time.Second

// sweepBatch is how many pending orders ExpirePending reads at a time.
const sweepBatch = 100

// Service implements the orders use cases.
type Service struct {
	store   Store
	users   UserDirectory
	catalog Catalog
	log     *slog.Logger
	now     func() time.Time
}

// NewService returns a Service that keeps orders in store and asks users and
// catalog about the rest. A nil log discards.
func NewService(store Store, users UserDirectory, catalog Catalog, log *slog.Logger) *Service {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{store: store, users: users, catalog: catalog, log: log, now: time.Now}
}

// Place places an order: it checks the request, the user and the products,
// stores the order as pending, reserves its stock and stores the outcome,
// confirmed or rejected (out of stock). replayed is true when the request repeats
// an earlier one with the same idempotency key, whose order is returned.
//
// It returns a fault.Invalid error for bad input; a fault.Unprocessable error
// with code "unknown-user", "unknown-product", "mixed-currencies" or
// "idempotency-key-reused"; a fault.Conflict error while an earlier request with
// the same key is still in progress; and the catalog's or the users service's
// error when they cannot answer. When reserving fails the order is undone.
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
	if _, err := s.users.User(ctx, req.UserID); err != nil {
		if fault.Is(err, fault.NotFound) {
			return Order{}, false, fault.New(fault.Unprocessable, "user %s does not exist", req.UserID).WithCode("unknown-user")
		}
		return Order{}, false, err
	}
	o, names, err := s.price(ctx, req)
	if err != nil {
		return Order{}, false, err
	}
	var key *IdempotencyKey
	if req.IdempotencyKey != "" {
		key = &IdempotencyKey{UserID: req.UserID, Key: req.IdempotencyKey, RequestHash: hash, OrderID: o.ID, CreatedAt: o.CreatedAt}
	}
	if err := s.store.CreateOrder(ctx, o, key); err != nil {
		if fault.CodeOf(err) == CodeKeyExists { // a concurrent request with the same key won
			o, err := s.replay(ctx, req.UserID, req.IdempotencyKey, hash)
			if fault.Is(err, fault.NotFound) { // and was undone since
				return Order{}, false, inProgress()
			}
			return o, err == nil, err
		}
		return Order{}, false, err
	}
	return s.reserve(ctx, o, names)
}

// replay returns the finished order that key produced, or a fault.NotFound
// error when the key is unknown.
func (s *Service) replay(ctx context.Context, userID, key, hash string) (Order, error) {
	k, err := s.store.IdempotencyKey(ctx, userID, key)
	if err != nil {
		return Order{}, err
	}
	if k.RequestHash != hash {
		return Order{}, fault.New(fault.Unprocessable, "this Idempotency-Key was already used for a different request").WithCode("idempotency-key-reused")
	}
	o, err := s.store.Order(ctx, k.OrderID)
	if err != nil {
		return Order{}, err
	}
	if o.Status == StatusPending {
		return Order{}, inProgress()
	}
	return o, nil
}

func inProgress() error {
	return &fault.Error{Kind: fault.Conflict, Code: "request-in-progress", RetryAfter: time.Second,
		Msg: "a request with this Idempotency-Key is in progress"}
}

// price builds the pending order with the catalog's current prices. It also
// returns the products' names by id.
func (s *Service) price(ctx context.Context, req PlaceRequest) (Order, map[string]string, error) {
	ids := make([]string, len(req.Lines))
	for i, l := range req.Lines {
		ids[i] = l.ProductID
	}
	found, err := s.catalog.Products(ctx, ids)
	if err != nil {
		return Order{}, nil, err
	}
	byID := make(map[string]products.Product, len(found))
	names := make(map[string]string, len(found))
	for _, p := range found {
		byID[p.ID], names[p.ID] = p, p.Name
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	o := Order{
		ID:        uuid.Must(uuid.NewV7()).String(),
		UserID:    req.UserID,
		Status:    StatusPending,
		Lines:     make([]Line, len(req.Lines)),
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
			return Order{}, nil, fault.New(fault.Unprocessable, "all products of an order must have the same currency").WithCode("mixed-currencies")
		}
		if p.Price.Amount < 0 || p.Price.Amount > (math.MaxInt64-o.Total.Amount)/int64(l.Quantity) {
			return Order{}, nil, fault.New(fault.Unprocessable, "the order total is out of range").WithCode("total-out-of-range")
		}
		o.Lines[i] = Line{ProductID: l.ProductID, Quantity: l.Quantity, UnitPrice: p.Price}
		o.Total.Amount += p.Price.Amount * int64(l.Quantity)
	}
	if len(missing) > 0 {
		return Order{}, nil, &fault.Error{Kind: fault.Unprocessable, Code: "unknown-product", Msg: missing[0].Message, Fields: missing}
	}
	return o, names, nil
}

// reserve reserves the stock of the pending order o and stores the outcome;
// names name the products in a rejection's reason.
func (s *Service) reserve(ctx context.Context, o Order, names map[string]string) (Order, bool, error) {
	lines := make([]products.Line, len(o.Lines))
	for i, l := range o.Lines {
		lines[i] = products.Line{ProductID: l.ProductID, Quantity: l.Quantity}
	}
	res, err := s.catalog.Reserve(ctx, o.ID, lines)
	if err == nil && res.Status != products.Reserved && res.Status != products.Rejected {
		err = fault.New(fault.BadGateway, "the catalog sent an unknown reservation status")
	}
	if err != nil {
		s.undo(ctx, o.ID)
		if fault.Is(err, fault.NotFound) { // a product vanished since it was priced
			return Order{}, false, fault.Wrap(err, fault.Unprocessable, "a product of the order does not exist").WithCode("unknown-product")
		}
		return Order{}, false, err
	}
	// The stock is held now: record it even if the caller has gone, or the
	// reservation would wait for the sweeper.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
	defer cancel()
	status, reason := StatusConfirmed, ""
	if res.Status == products.Rejected {
		status, reason = StatusRejected, shortageReason(res, names)
	}
	o, err = s.store.UpdateOrder(ctx, o.ID, func(o *Order) error {
		return o.Transition(status, reason, s.now().UTC().Truncate(time.Microsecond))
	})
	if err != nil {
		// The order stays pending: the sweeper releases and rejects it.
		return Order{}, false, err
	}
	return o, false, nil
}

// undo releases whatever was reserved for the order and deletes it, so that a
// failed Place leaves nothing behind and its key can be used again. It runs on a
// context of its own so that a cancelled request still compensates. If the
// release fails the order stays pending for the sweeper.
func (s *Service) undo(ctx context.Context, id string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
	defer cancel()
	if err := s.catalog.Release(ctx, id); err != nil {
		s.log.WarnContext(ctx, "undo order: release failed, leaving it to the sweeper", "order_id", id, "err", err)
		return
	}
	if err := s.store.DeletePending(ctx, id); err != nil {
		s.log.WarnContext(ctx, "undo order: delete failed, leaving it to the sweeper", "order_id", id, "err", err)
	}
}

func shortageReason(res products.Reservation, names map[string]string) string {
	short := make([]string, len(res.Shortages))
	for i, sh := range res.Shortages {
		short[i] = sh.ProductID
		if n := names[sh.ProductID]; n != "" {
			short[i] = n
		}
	}
	if len(short) == 0 {
		return "insufficient stock"
	}
	return "insufficient stock: " + strings.Join(short, ", ")
}

// Order returns the order with id, or a fault.NotFound error.
func (s *Service) Order(ctx context.Context, id string) (Order, error) {
	if !ValidID(id) {
		return Order{}, OrderNotFound()
	}
	return s.store.Order(ctx, id)
}

// Enriched returns the order with id together with its user and products, which
// are fetched at the same time, if v may see it. A part that cannot be fetched
// is left out and named in Degraded: only reading the order itself can fail,
// with a fault.NotFound error for an unknown id. An order v may not see is the
// same fault.NotFound error, found before anything else is asked for, so that
// nobody learns which orders of others exist.
func (s *Service) Enriched(ctx context.Context, id string, v Viewer) (EnrichedOrder, error) {
	o, err := s.Order(ctx, id)
	if err != nil {
		return EnrichedOrder{}, err
	}
	if !v.CanSee(o.UserID) {
		return EnrichedOrder{}, OrderNotFound()
	}
	ids := make([]string, len(o.Lines))
	for i, l := range o.Lines {
		ids[i] = l.ProductID
	}
	var (
		user       *users.User
		found      []products.Product
		uErr, pErr error
		wg         sync.WaitGroup
	)
	wg.Go(func() {
		u, err := s.users.User(ctx, o.UserID)
		if uErr = err; err == nil {
			user = &u
		}
	})
	wg.Go(func() { found, pErr = s.catalog.Products(ctx, ids) })
	wg.Wait()

	e := EnrichedOrder{
		ID: o.ID, UserID: o.UserID, Status: o.Status, Reason: o.Reason, Total: o.Total,
		CreatedAt: o.CreatedAt, UpdatedAt: o.UpdatedAt, User: user,
		Lines: make([]EnrichedLine, len(o.Lines)), Degraded: []string{},
	}
	if uErr != nil {
		s.log.WarnContext(ctx, "order without its user", "order_id", o.ID, "err", uErr)
		e.Degraded = append(e.Degraded, PartUser)
	}
	byID := make(map[string]*products.Product, len(found))
	for i := range found {
		byID[found[i].ID] = &found[i]
	}
	complete := pErr == nil
	for i, l := range o.Lines {
		p := byID[l.ProductID]
		complete = complete && p != nil
		e.Lines[i] = EnrichedLine{ProductID: l.ProductID, Quantity: l.Quantity, UnitPrice: l.UnitPrice, Product: p}
	}
	if !complete {
		s.log.WarnContext(ctx, "order without some of its products", "order_id", o.ID, "err", pErr)
		e.Degraded = append(e.Degraded, PartProducts)
	}
	return e, nil
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

// ExpirePending finishes the orders left pending for longer than olderThan by a
// Place that could not finish (a crash, or a failed undo): it releases their
// stock and rejects them, and returns how many it rejected. An order whose
// release fails is left for the next run; a store error stops the run and is
// returned with the count so far.
//
// olderThan must be longer than any Place can last (the request budget plus
// finishing), or an order still being placed could be rejected under it.
func (s *Service) ExpirePending(ctx context.Context, olderThan time.Duration) (int, error) {
	cutoff := s.now().UTC().Add(-olderThan)
	n, after := 0, ""
	for {
		ids, err := s.store.PendingOrders(ctx, cutoff, after, sweepBatch)
		if err != nil {
			return n, err
		}
		for _, id := range ids {
			if err := s.catalog.Release(ctx, id); err != nil {
				s.log.WarnContext(ctx, "expire order: release failed, retrying next run", "order_id", id, "err", err)
				continue
			}
			_, err := s.store.UpdateOrder(ctx, id, func(o *Order) error {
				return o.Transition(StatusRejected, ExpiredReason, s.now().UTC().Truncate(time.Microsecond))
			})
			switch {
			case fault.Is(err, fault.Conflict), fault.Is(err, fault.NotFound):
				// Finished or undone meanwhile: nothing is left to do.
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

// RunSweeper runs ExpirePending(ctx, olderThan) now and then every every (which
// must be positive), until ctx is done. Failures are logged and retried on the
// next run.
func (s *Service) RunSweeper(ctx context.Context, every, olderThan time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		n, err := s.ExpirePending(ctx, olderThan)
		if err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "sweeper failed", "err", err)
		}
		if n > 0 {
			s.log.InfoContext(ctx, "sweeper rejected stale orders", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
