// Package testenv gives tests the addresses of the services they need
// (PostgreSQL, Redis) from the environment, and decides what a test does
// when one is not configured: it skips, with a message saying which
// variable to set, unless KEYGATE_REQUIRE_SERVICES=1 (set by .ci/run), in
// which case it fails, so that CI never passes by skipping.
package testenv

import (
	"os"
	"testing"
)

// Environment variables read by tests.
const (
	// PostgresVar names the PostgreSQL URL tests connect to, such as
	// postgres://postgres@127.0.0.1:5432/test?sslmode=disable.
	PostgresVar = "KEYGATE_TEST_POSTGRES"
	// RedisVar names the Redis URL tests connect to, such as
	// redis://127.0.0.1:6379/0.
	RedisVar = "KEYGATE_TEST_REDIS"
	// RequireVar, set to 1, turns a missing service into a failure.
	RequireVar = "KEYGATE_REQUIRE_SERVICES"
)

// Postgres returns the PostgreSQL URL tests use, or skips (or fails) t
// when KEYGATE_TEST_POSTGRES is unset.
func Postgres(t testing.TB) string {
	t.Helper()
	return need(t, PostgresVar, "PostgreSQL")
}

// Redis returns the Redis URL tests use, or skips (or fails) t when
// KEYGATE_TEST_REDIS is unset.
func Redis(t testing.TB) string {
	t.Helper()
	return need(t, RedisVar, "Redis")
}

// Required reports whether missing services fail tests rather than skip
// them.
func Required() bool { return os.Getenv(RequireVar) == "1" }

func need(t testing.TB, name, service string) string {
	t.Helper()
	if v := os.Getenv(name); v != "" {
		return v
	}
	if Required() {
		t.Fatalf("%s is unset and %s=1: this test needs %s", name, RequireVar, service)
	}
	t.Skipf("skipped: set %s to run this test against %s", name, service)
	return ""
}
