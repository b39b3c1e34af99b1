package securitytest

import (
	"net/http"
	"testing"
)

type placedOrder struct {
	ID     string `json:"id"`
	UserID string `json:"user_id"`
	Status string `json:"status"`
}

type stockOf struct {
	Stock int `json:"stock"`
}

// TestAPI6SensitiveBusinessFlows (OWASP API6:2023, unrestricted access to
// sensitive business flows): placing an order needs a customer, is done for
// that customer only, and a replayed request (same Idempotency-Key) never
// orders twice, nor hands one customer's order to another.
func TestAPI6SensitiveBusinessFlows(t *testing.T) {
	t.Parallel()
	s := StartServices(t, Options{})
	productURL := s.Gateway + "/api/v1/products/" + s.Product
	stock := func(t *testing.T) int {
		t.Helper()
		var p stockOf
		Do(t, "GET", productURL, nil).Want(t, 200).JSON(t, &p)
		return p.Stock
	}
	for _, tg := range s.Targets("orders") {
		url := tg.URL + "/api/v1/orders"
		t.Run(tg.Name+"/placing an order needs a user", func(t *testing.T) {
			before := stock(t)
			Do(t, "POST", url, orderBody(s.Product, 1)).WantUnauthorized(t)
			Do(t, "POST", url, orderBody(s.Product, 1), "Idempotency-Key", "anon-"+tg.Name).WantUnauthorized(t)
			if after := stock(t); after != before {
				t.Errorf("stock went from %d to %d after anonymous orders", before, after)
			}
		})
		t.Run(tg.Name+"/a replay orders once", func(t *testing.T) {
			key := "replay-" + tg.Name
			before, count := stock(t), countOrders(t, tg.URL, s.Alice.Access)
			var first, again placedOrder
			Do(t, "POST", url, orderBody(s.Product, 2), append(Bearer(s.Alice.Access), "Idempotency-Key", key)...).Want(t, 202).JSON(t, &first)
			s.AwaitOrder(t, s.Alice.Access, first.ID)
			for range 3 {
				Do(t, "POST", url, orderBody(s.Product, 2), append(Bearer(s.Alice.Access), "Idempotency-Key", key)...).Want(t, 200).JSON(t, &again)
				if again.ID != first.ID {
					t.Errorf("replay made order %s, want the first one %s", again.ID, first.ID)
				}
			}
			if first.UserID != s.Alice.ID {
				t.Errorf("order user %q, want alice %q", first.UserID, s.Alice.ID)
			}
			if after := stock(t); after != before-2 {
				t.Errorf("stock %d after one order of 2 and its replays, want %d", after, before-2)
			}
			if n := countOrders(t, tg.URL, s.Alice.Access); n != count+1 {
				t.Errorf("alice has %d orders, want %d", n, count+1)
			}
			// The same key with another body is refused, not taken for the first.
			Do(t, "POST", url, orderBody(s.Product, 3), append(Bearer(s.Alice.Access), "Idempotency-Key", key)...).
				WantProblem(t, http.StatusUnprocessableEntity)

			// bob sends alice's key and body: he gets an order of his own,
			// never alice's.
			var bobs placedOrder
			r := Do(t, "POST", url, orderBody(s.Product, 2), append(Bearer(s.Bob.Access), "Idempotency-Key", key)...)
			r.Want(t, 202).JSON(t, &bobs)
			s.AwaitOrder(t, s.Bob.Access, bobs.ID)
			if bobs.ID == first.ID || bobs.UserID != s.Bob.ID {
				t.Errorf("bob replaying alice's key got %+v; want a new order of his own (alice's is %s)", bobs, first.ID)
			}
		})
		t.Run(tg.Name+"/parallel replays order once", func(t *testing.T) {
			key := "parallel-" + tg.Name
			before, count := stock(t), countOrders(t, tg.URL, s.Alice.Access)
			const n = 10
			rs := Parallel(t, n, func(int) *http.Request {
				return NewRequest(t, "POST", url, orderBody(s.Product, 1), append(Bearer(s.Alice.Access), "Idempotency-Key", key)...)
			})
			ids := map[string]bool{}
			for _, r := range rs {
				switch r.Status {
				case http.StatusAccepted, http.StatusOK:
					var o placedOrder
					r.JSON(t, &o)
					ids[o.ID] = true
					s.AwaitOrder(t, s.Alice.Access, o.ID)
				case http.StatusConflict: // an earlier request with the key is in progress
				default:
					t.Errorf("%s; want 202, 200 or 409", r)
				}
			}
			if len(ids) > 1 {
				t.Errorf("%d parallel requests with one key made orders %v, want one", n, ids)
			}
			if after := stock(t); after != before-len(ids) {
				t.Errorf("stock %d after %d orders of 1, want %d", after, len(ids), before-len(ids))
			}
			if got := countOrders(t, tg.URL, s.Alice.Access); got != count+len(ids) {
				t.Errorf("alice has %d orders, want %d", got, count+len(ids))
			}
		})
		t.Run(tg.Name+"/an order is for the caller only", func(t *testing.T) {
			count := countOrders(t, tg.URL, s.Bob.Access)
			body := orderBody(s.Product, 1)
			body["user_id"] = s.Bob.ID
			Do(t, "POST", url, body, Bearer(s.Alice.Access)...).WantProblem(t, http.StatusUnprocessableEntity)
			if n := countOrders(t, tg.URL, s.Bob.Access); n != count {
				t.Errorf("bob has %d orders after alice ordered for him, want %d", n, count)
			}
			var o placedOrder
			Do(t, "POST", url, orderBody(s.Product, 1), Bearer(s.Bob.Access)...).Want(t, 202).JSON(t, &o)
			s.AwaitOrder(t, s.Bob.Access, o.ID) // before the next subtest counts stock
			if o.UserID != s.Bob.ID {
				t.Errorf("bob's order belongs to %q", o.UserID)
			}
		})
	}
}
