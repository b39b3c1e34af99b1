package orders

import (
	"context"
	"sync"

	"github.com/microshop/microshop/internal/products"
	"github.com/microshop/microshop/internal/users"
)

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
		Deadline: o.Deadline, ReleasedAt: o.ReleasedAt, CreatedAt: o.CreatedAt, UpdatedAt: o.UpdatedAt, User: user,
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
