package sqlstore

import (
	"slices"
	"sync"

	"github.com/keygate/keygate"
)

// Listeners are the functions registered with a store's OnChange. The zero
// value is ready; it is safe for concurrent use.
type Listeners struct {
	mu   sync.Mutex
	list []*listener // replaced, never changed in place: Notify ranges over it unlocked
}

// listener is one registered function; its address tells registrations of
// the same function apart.
type listener struct{ fn func(keygate.Change) }

// Add registers fn and returns the function that unregisters it; a
// notification already under way may still call fn.
func (ls *Listeners) Add(fn func(keygate.Change)) (remove func()) {
	l := &listener{fn: fn}
	ls.mu.Lock()
	defer ls.mu.Unlock()
	ls.list = append(slices.Clip(ls.list), l)
	return func() {
		ls.mu.Lock()
		defer ls.mu.Unlock()
		ls.list = slices.DeleteFunc(slices.Clone(ls.list), func(x *listener) bool { return x == l })
	}
}

// Any reports whether any function is registered, so that writers can skip
// building changes nobody will see.
func (ls *Listeners) Any() bool {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return len(ls.list) > 0
}

// Notify calls every registered function with each change, in the
// caller's goroutine.
func (ls *Listeners) Notify(changes []keygate.Change) {
	if len(changes) == 0 {
		return
	}
	ls.mu.Lock()
	list := ls.list
	ls.mu.Unlock()
	for _, c := range changes {
		for _, l := range list {
			l.fn(c)
		}
	}
}
