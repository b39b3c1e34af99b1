package ordershttp

import "time"

// SetKeepAlive sets how often event streams send a keep-alive comment, until
// the test ends.
func SetKeepAlive(t interface{ Cleanup(func()) }, d time.Duration) {
	old := keepAliveEvery
	keepAliveEvery = d
	t.Cleanup(func() { keepAliveEvery = old })
}
