package sqlite

import (
	"database/sql/driver"
	"fmt"

	sqlite "modernc.org/sqlite"

	"github.com/keygate/keygate"
)

// The rollups' latency column holds a keygate.LatencyHistogram in its
// compact encoding. Two SQL functions merge them, so that an upsert adds
// a batch's histogram to a stored one and a query sums a group's:
// keygate_hist_add(a, b) and the aggregate keygate_hist_sum(h).
func init() {
	if err := sqlite.RegisterFunction("keygate_hist_add", &sqlite.FunctionImpl{
		NArgs:         2,
		Deterministic: true,
		Scalar: func(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
			var h keygate.LatencyHistogram
			for _, a := range args {
				if err := mergeHist(&h, a); err != nil {
					return nil, err
				}
			}
			return h.AppendBinary([]byte{}), nil
		},
	}); err != nil {
		panic(err)
	}
	if err := sqlite.RegisterFunction("keygate_hist_sum", &sqlite.FunctionImpl{
		NArgs:         1,
		Deterministic: true,
		MakeAggregate: func(sqlite.FunctionContext) (sqlite.AggregateFunction, error) {
			return &histSum{}, nil
		},
	}); err != nil {
		panic(err)
	}
}

// mergeHist adds the encoded histogram v (a BLOB, or NULL) to h.
func mergeHist(h *keygate.LatencyHistogram, v driver.Value) error {
	var b []byte
	switch v := v.(type) {
	case nil:
		return nil
	case []byte:
		b = v
	case string:
		b = []byte(v)
	default:
		return fmt.Errorf("keygate_hist: a %T is not a latency histogram", v)
	}
	o, err := keygate.ParseLatencyHistogram(b)
	if err != nil {
		return err
	}
	h.Merge(o)
	return nil
}

// histSum is the keygate_hist_sum aggregate.
type histSum struct{ h keygate.LatencyHistogram }

func (a *histSum) Step(_ *sqlite.FunctionContext, args []driver.Value) error {
	return mergeHist(&a.h, args[0])
}

func (a *histSum) WindowInverse(*sqlite.FunctionContext, []driver.Value) error {
	return fmt.Errorf("keygate_hist_sum is not a window function")
}

func (a *histSum) WindowValue(*sqlite.FunctionContext) (driver.Value, error) {
	return a.h.AppendBinary([]byte{}), nil
}

func (a *histSum) Final(*sqlite.FunctionContext) {}
