package orders

import (
	"context"
	"sync"
	"time"
)

// WatchPoll is how often Watch reads the order even when this process was not
// told of a change: another replica of the service may have made it.
const WatchPoll = 500 * time.Millisecond

// Watch follows the order id for v. The channel it returns receives the order
// as it is now, then the order again after each change of its status; it is
// closed after a final status (rejected, expired, cancelled) has been
// received, or when ctx is done. Changes made by this Service are seen at once,
// changes made elsewhere (another replica) within WatchPoll. An order v may
// not see is a fault.NotFound error, as for an unknown one.
func (s *Service) Watch(ctx context.Context, id string, v Viewer) (<-chan Order, error) {
	if !ValidID(id) {
		return nil, OrderNotFound()
	}
	// Subscribe before the first read, so that no change can fall in between.
	changed, unsubscribe := s.watchers.subscribe(id)
	o, err := s.store.Order(ctx, id)
	if err == nil && !v.CanSee(o.UserID) {
		err = OrderNotFound()
	}
	if err != nil {
		unsubscribe()
		return nil, err
	}
	out := make(chan Order)
	go func() {
		defer close(out)
		defer unsubscribe()
		poll := time.NewTicker(s.poll)
		defer poll.Stop()
		for {
			select {
			case out <- o:
			case <-ctx.Done():
				return
			}
			if Final(o.Status) {
				return
			}
			for last := o.Status; o.Status == last; {
				select {
				case <-ctx.Done():
					return
				case <-changed:
				case <-poll.C:
				}
				cur, err := s.store.Order(ctx, id)
				if err != nil {
					if ctx.Err() == nil {
						s.log.WarnContext(ctx, "watch: cannot read the order, retrying", "order_id", id, "err", err)
					}
					continue
				}
				o = cur
			}
		}
	}()
	return out, nil
}

// notifier tells the watchers of an order, in this process, that it changed.
type notifier struct {
	mu   sync.Mutex
	subs map[string]map[chan struct{}]struct{}
}

func newNotifier() *notifier {
	return &notifier{subs: map[string]map[chan struct{}]struct{}{}}
}

// subscribe returns a channel that receives a value after a change of the
// order id (changes that come in quick succession may give one value), and
// the function that ends the subscription.
func (n *notifier) subscribe(id string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	n.mu.Lock()
	if n.subs[id] == nil {
		n.subs[id] = map[chan struct{}]struct{}{}
	}
	n.subs[id][ch] = struct{}{}
	n.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			n.mu.Lock()
			defer n.mu.Unlock()
			delete(n.subs[id], ch)
			if len(n.subs[id]) == 0 {
				delete(n.subs, id)
			}
		})
	}
}

// notify wakes every watcher of the order id; it never blocks.
func (n *notifier) notify(id string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for ch := range n.subs[id] {
		select {
		case ch <- struct{}{}:
		default: // a wake-up is pending already
		}
	}
}
