// Package sqlstore holds what keygate's two SQL stores, sqlite and
// postgres, share above their SQL: the checks and defaults applied before a
// record is written (PrepareKey, PrepareAccount, …), the errors whose
// messages the caller sees, the stored form of values (times to the
// millisecond in UTC, empty lists rather than nil), the conditions of list
// filters and their cursors, and the in-memory sums of a usage batch.
//
// It runs no query and holds no SQL that differs between the two dialects:
// a filter's conditions are the same text in both, written with "?"
// placeholders, which a Where numbers ($1, $2, …) for PostgreSQL. Schemas,
// statements, transactions and the mapping of constraint violations to
// errors stay in each store.
package sqlstore

import (
	"fmt"
	"strings"
	"time"

	"github.com/keygate/keygate"
)

// Dialect is what the shared filter conditions need to know of a store's
// SQL: how placeholders are written and how a time is passed.
type Dialect struct {
	// Numbered makes each "?" of a condition the next $n (PostgreSQL);
	// otherwise placeholders stay "?" (SQLite).
	Numbered bool
	// Time returns the argument that a time column is compared with (Unix
	// milliseconds in SQLite, the time itself in PostgreSQL).
	Time func(time.Time) any
}

// Where accumulates the conditions of a query and their arguments.
type Where struct {
	d     Dialect
	conds []string
	args  []any
}

// Where returns an empty Where in d.
func (d Dialect) Where() *Where { return &Where{d: d} }

// Add adds cond, whose "?" placeholders take args in order.
func (w *Where) Add(cond string, args ...any) {
	if !w.d.Numbered {
		w.conds = append(w.conds, cond)
		w.args = append(w.args, args...)
		return
	}
	var b strings.Builder
	i := 0
	for _, r := range cond {
		if r == '?' && i < len(args) {
			w.args = append(w.args, args[i])
			i++
			fmt.Fprintf(&b, "$%d", len(w.args))
			continue
		}
		b.WriteRune(r)
	}
	w.conds = append(w.conds, b.String())
}

// Next adds one more argument, after the conditions' own (a LIMIT), and
// returns its placeholder.
func (w *Where) Next(arg any) string {
	w.args = append(w.args, arg)
	if !w.d.Numbered {
		return "?"
	}
	return fmt.Sprintf("$%d", len(w.args))
}

// Args returns the arguments of the conditions, and of Next, in order.
func (w *Where) Args() []any { return w.args }

// String returns " WHERE " and the conditions joined by AND, or "" when
// there is none.
func (w *Where) String() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// time returns t as the argument its column compares with.
func (w *Where) time(t time.Time) any { return w.d.Time(t) }

// PageSize bounds a filter's Limit: zero or less means DefaultPageSize,
// anything above MaxPageSize means MaxPageSize.
func PageSize(limit int) int {
	switch {
	case limit <= 0:
		return keygate.DefaultPageSize
	case limit > keygate.MaxPageSize:
		return keygate.MaxPageSize
	}
	return limit
}
