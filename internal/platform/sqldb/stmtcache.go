package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"sync"
	"time"
)

// maxCachedStatements bounds the statement cache. A service has a few dozen
// distinct queries; queries built with a variable number of placeholders
// (IN lists) add one entry per length, and past the bound they simply run
// unprepared.
const maxCachedStatements = 256

// stmtCache keeps one prepared statement per query text, on SQLite only.
//
// Compiling SQL is a large part of a small query's cost with SQLite (about half
// of an order read's database time in the profiles, see docs/benchmarks.md), and
// database/sql compiles an unprepared query again on every call. A *sql.Stmt is
// safe for concurrent use, prepares itself on each pooled connection the first
// time it runs there, and is bound to a transaction's connection with
// Tx.StmtContext without being compiled again. PostgreSQL is left out: pgx
// already caches prepared statements per connection.
//
// A statement is prepared in the background after the first time its query
// runs, never by the caller: preparing takes a connection from the pool, and a
// caller inside a transaction already holds one while the other connections
// may all be waiting for its write lock.
type stmtCache struct {
	mu      sync.RWMutex
	stmts   map[string]*sql.Stmt
	pending map[string]bool
	closed  bool
}

// get returns the prepared statement for q, or nil to run q unprepared (another
// dialect, a multi-statement text, a full cache, a statement not prepared yet,
// or one that did not compile: its error then comes from running it as usual).
func (c *stmtCache) get(db *DB, q string) *sql.Stmt {
	if db.Dialect != SQLite {
		return nil
	}
	c.mu.RLock()
	st := c.stmts[q]
	c.mu.RUnlock()
	if st != nil || !cacheable(q) {
		return st
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.pending[q] || c.stmts[q] != nil || len(c.stmts)+len(c.pending) >= maxCachedStatements {
		return c.stmts[q]
	}
	if c.pending == nil {
		c.pending = map[string]bool{}
	}
	c.pending[q] = true
	go c.prepare(db, q)
	return nil
}

func (c *stmtCache) prepare(db *DB, q string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := db.sql.PrepareContext(ctx, q)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil || c.closed {
		if st != nil {
			st.Close()
		}
		// A query that does not compile stays pending, so it is not tried
		// again: it runs unprepared and reports its own error. One that only
		// waited too long for a connection may be tried again later.
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			delete(c.pending, q)
		}
		return
	}
	delete(c.pending, q)
	if c.stmts == nil {
		c.stmts = map[string]*sql.Stmt{}
	}
	c.stmts[q] = st
}

// len reports how many statements are prepared (for tests).
func (c *stmtCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.stmts)
}

func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.stmts {
		st.Close()
	}
	c.stmts, c.closed = nil, true
}

// maxCachedPlaceholders: a query with more placeholders than this is a batch
// shape (an IN list sized to its input) whose texts would each take a slot
// of the cache for a single use.
const maxCachedPlaceholders = 8

// cacheable reports whether q is worth a prepared statement: one statement,
// not a savepoint command (their names vary per use), not a batch shape.
func cacheable(q string) bool {
	if strings.Contains(q, ";") || strings.Count(q, "?") > maxCachedPlaceholders {
		return false
	}
	head := strings.ToUpper(strings.TrimSpace(q))
	for _, verb := range []string{"SAVEPOINT", "RELEASE", "ROLLBACK"} {
		if strings.HasPrefix(head, verb) {
			return false
		}
	}
	return true
}
