//go:build !race

package apikey

// raceEnabled reports whether the race detector is on. Under it, sync.Pool
// drops a random share of what is put back, so pooled code allocates.
const raceEnabled = false
