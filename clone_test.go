package keygate_test

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keygate/keygate"
)

// fill sets every field reachable from v to a value derived from seed:
// pointers get a new target, slices two elements, maps one entry. A field
// of a kind it does not know fails the test, so that a new field of Key
// cannot slip past the Clone test.
func fill(t *testing.T, v reflect.Value, seed int, path string) {
	t.Helper()
	if v.Type() == reflect.TypeFor[time.Time]() {
		v.Set(reflect.ValueOf(time.Date(2026, 1, 1, 0, 0, seed, 0, time.UTC)))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(fmt.Sprintf("s%d", seed))
	case reflect.Bool:
		v.SetBool(seed%2 == 1)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(seed))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(seed))
	case reflect.Float32, reflect.Float64:
		v.SetFloat(float64(seed) + 0.5)
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		fill(t, v.Elem(), seed, path)
	case reflect.Slice:
		if v.IsNil() {
			v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		}
		for i := range v.Len() {
			fill(t, v.Index(i), seed+i, fmt.Sprintf("%s[%d]", path, i))
		}
	case reflect.Map:
		if v.IsNil() {
			v.Set(reflect.MakeMap(v.Type()))
		}
		k := reflect.New(v.Type().Key()).Elem()
		fill(t, k, 0, path+" key")
		e := reflect.New(v.Type().Elem()).Elem()
		fill(t, e, seed, path+"[k]")
		v.SetMapIndex(k, e)
	case reflect.Struct:
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if !f.IsExported() {
				t.Fatalf("%s.%s is unexported: teach this test how to fill it", path, f.Name)
			}
			fill(t, v.Field(i), seed, path+"."+f.Name)
		}
	default:
		t.Fatalf("%s is a %s: teach this test how to fill it", path, v.Kind())
	}
}

// TestKeyCloneIsDeep fills every field of a key, clones it, then writes
// new values through everything the clone can reach — pointer targets,
// slice and map elements — and checks that the original did not change.
func TestKeyCloneIsDeep(t *testing.T) {
	orig := &keygate.Key{}
	fill(t, reflect.ValueOf(orig).Elem(), 1, "Key")
	want := &keygate.Key{}
	fill(t, reflect.ValueOf(want).Elem(), 1, "Key")

	c := orig.Clone()
	if diff := cmp.Diff(want, c); diff != "" {
		t.Fatalf("the clone differs from the original (-want +got):\n%s", diff)
	}
	// Writing through the clone in place (not replacing its pointers and
	// slices) reaches the original wherever they share memory.
	fill(t, reflect.ValueOf(c).Elem(), 7, "Key")
	if diff := cmp.Diff(want, orig); diff != "" {
		t.Errorf("changing the clone changed the original (-want +got):\n%s", diff)
	}
	var nilKey keygate.Key
	if diff := cmp.Diff(&nilKey, nilKey.Clone()); diff != "" {
		t.Errorf("clone of the zero key (-want +got):\n%s", diff)
	}
}
