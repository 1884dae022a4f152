package sqlite

// ScanInParts makes ForEachKey read tables of minRows rows or more in up
// to parts parts, until the returned func restores the defaults.
func ScanInParts(minRows int64, parts int) (restore func()) {
	oldMin, oldParts := scanPartMin, scanMaxParts
	scanPartMin, scanMaxParts = minRows, func() int { return parts }
	return func() { scanPartMin, scanMaxParts = oldMin, oldParts }
}
