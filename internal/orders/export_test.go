package orders

import "time"

// SetWatchPoll sets how often s's watchers read their order without being
// told of a change.
func SetWatchPoll(s *Service, d time.Duration) { s.poll = d }

// SetClock sets the clock of s.
func SetClock(s *Service, now func() time.Time) { s.now = now }
