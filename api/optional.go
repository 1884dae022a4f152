package api

import (
	"bytes"
	"encoding/json"
)

// Optional is a PATCH field: Set is false when the field was absent (leave
// it alone); when Set, Value is the new value, or nil for JSON null (clear
// it, where the field can be cleared).
type Optional[T any] struct {
	Set   bool
	Value *T
}

// UnmarshalJSON records that the field was present.
func (o *Optional[T]) UnmarshalJSON(b []byte) error {
	o.Set = true
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		o.Value = nil
		return nil
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	o.Value = &v
	return nil
}

// MarshalJSON writes the value, or null.
func (o Optional[T]) MarshalJSON() ([]byte, error) {
	if o.Value == nil {
		return []byte("null"), nil
	}
	return json.Marshal(*o.Value)
}

// IsZero lets omitempty-style encoders skip unset fields.
func (o Optional[T]) IsZero() bool { return !o.Set }

// Some returns a set Optional holding v.
func Some[T any](v T) Optional[T] { return Optional[T]{Set: true, Value: &v} }

// Null returns a set Optional that clears the field.
func Null[T any]() Optional[T] { return Optional[T]{Set: true} }
