package api

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// The verify API is keygate's hot path, and reflection-driven JSON was the
// larger part of its cost. The functions here read and write its bodies
// without reflection. They are exact, not approximate: a body the fast
// reader is not sure of is handed to decode, and an answer the writer
// cannot write byte for byte as encoding/json would is written by
// encoding/json (see verifyjson_test.go, which checks both).

// bodyPool holds the buffers verify bodies are read into.
var bodyPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// decodeVerify reads the body of POST /v1/keys/verify into req, with the
// same rules and the same errors as decode.
func decodeVerify(w http.ResponseWriter, r *http.Request, req *VerifyRequest) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return decodeSlow(w, r, req) // decode words the error
	}
	bp := bodyPool.Get().(*[]byte)
	defer putBody(bp)
	body, complete := readUpTo((*bp)[:0], r.Body, MaxBodyBytes)
	*bp = body[:0]
	if complete && parseVerifyRequest(body, req) {
		return nil
	}
	// Not sure: decode reads what was read and the rest, and words any
	// error exactly as for every other endpoint.
	r.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(body), r.Body), r.Body}
	return decodeSlow(w, r, req)
}

// decodeSlow is decode into a variable of its own, which keeps the
// caller's req off the heap on the fast path.
func decodeSlow(w http.ResponseWriter, r *http.Request, req *VerifyRequest) error {
	var slow VerifyRequest
	err := decode(w, r, &slow, false)
	*req = slow
	return err
}

// putBody returns a buffer to bodyPool unless a large body grew it.
func putBody(bp *[]byte) {
	if cap(*bp) <= 64<<10 {
		*bp = (*bp)[:0]
		bodyPool.Put(bp)
	}
}

// readUpTo appends r's bytes to buf until EOF or until more than limit
// were read; complete reports that EOF came first.
func readUpTo(buf []byte, r io.Reader, limit int64) ([]byte, bool) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > limit {
			return buf, false
		}
		if err == io.EOF {
			return buf, true
		}
		if err != nil {
			return buf, false
		}
	}
}

// parseVerifyRequest reads a JSON object holding only VerifyRequest's
// fields, spelled exactly, with string (or null) values made of printable
// ASCII without escapes, and scopes as an array of such strings. For any
// other input it returns false and leaves the decision to encoding/json.
func parseVerifyRequest(b []byte, req *VerifyRequest) bool {
	p := jsonScanner{b: b}
	var out VerifyRequest
	if !p.consume('{') {
		return false
	}
	if p.consume('}') {
		return p.end() && set(req, out)
	}
	for {
		name, ok := p.str()
		if !ok || !p.consume(':') {
			return false
		}
		var dst *string
		switch string(name) {
		case "key":
			dst = &out.Key
		case "ip":
			dst = &out.IP
		case "method":
			dst = &out.Method
		case "route":
			dst = &out.Route
		case "scopes":
			if p.null() {
				out.Scopes = nil
				break
			}
			if !p.consume('[') {
				return false
			}
			out.Scopes = out.Scopes[:0]
			if out.Scopes == nil {
				out.Scopes = []string{}
			}
			if !p.consume(']') {
				for {
					s, ok := p.str()
					if !ok {
						return false
					}
					out.Scopes = append(out.Scopes, string(s))
					if p.consume(']') {
						break
					}
					if !p.consume(',') {
						return false
					}
				}
			}
		default:
			return false // another spelling or an unknown field: decode's call
		}
		if dst != nil && !p.null() {
			s, ok := p.str()
			if !ok {
				return false
			}
			*dst = string(s)
		}
		if p.consume('}') {
			return p.end() && set(req, out)
		}
		if !p.consume(',') {
			return false
		}
	}
}

func set(req *VerifyRequest, v VerifyRequest) bool {
	*req = v
	return true
}

// jsonScanner walks a JSON text for parseVerifyRequest.
type jsonScanner struct {
	b []byte
	i int
}

func (p *jsonScanner) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *jsonScanner) consume(c byte) bool {
	p.space()
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *jsonScanner) null() bool {
	p.space()
	if bytes.HasPrefix(p.b[p.i:], []byte("null")) {
		p.i += 4
		return true
	}
	return false
}

// str reads a string of printable ASCII without escapes.
func (p *jsonScanner) str() ([]byte, bool) {
	if !p.consume('"') {
		return nil, false
	}
	start := p.i
	for ; p.i < len(p.b); p.i++ {
		switch c := p.b[p.i]; {
		case c == '"':
			p.i++
			return p.b[start : p.i-1], true
		case c == '\\' || c < 0x20 || c > 0x7e:
			return nil, false
		}
	}
	return nil, false
}

// end reports whether only white space is left.
func (p *jsonScanner) end() bool {
	p.space()
	return p.i == len(p.b)
}

var (
	jsonContentType = []string{"application/json"}
	noStore         = []string{"no-store"}
)

// verifyAnswer is a VerifyResponse as the verify handler builds it: the
// quota and rate figures held as values, not behind the wire type's
// pointers, so that answering allocates nothing for them.
type verifyAnswer struct {
	VerifyResponse // Quota and Rate nil; see limits
	limits         bool
	quota          QuotaView
	rate           RateView
}

// response returns the wire form of a.
func (a *verifyAnswer) response() *VerifyResponse {
	resp := a.VerifyResponse
	if a.limits {
		q, rt := a.quota, a.rate
		resp.Quota, resp.Rate = &q, &rt
	}
	return &resp
}

// writeVerifyAnswer writes a as writeJSON would write a.response(), byte
// for byte.
func writeVerifyAnswer(w http.ResponseWriter, a *verifyAnswer) error {
	h := w.Header()
	h["Content-Type"] = jsonContentType[:1:1]
	h["Cache-Control"] = noStore[:1:1]
	w.WriteHeader(http.StatusOK)
	bp := bodyPool.Get().(*[]byte)
	b, ok := appendVerifyAnswer((*bp)[:0], a)
	if !ok {
		var buf bytes.Buffer
		_ = json.NewEncoder(&buf).Encode(a.response())
		b = append(b[:0], buf.Bytes()...)
	}
	_, _ = w.Write(b)
	*bp = b
	putBody(bp)
	return nil
}

// appendVerifyAnswer appends a.response() as encoding/json's Encoder
// writes it (HTML-safe, with a trailing newline). ok is false when a value
// needs what only encoding/json does (escapes, non-ASCII text, odd
// floats).
func appendVerifyAnswer(b []byte, a *verifyAnswer) (_ []byte, ok bool) {
	resp := &a.VerifyResponse
	ok = true
	str := func(name, v string, omitEmpty bool) {
		if omitEmpty && v == "" {
			return
		}
		b = append(b, `,"`...)
		b = append(b, name...)
		b = append(b, `":`...)
		b, ok = appendPlainString(b, v, ok)
	}
	b = append(b, `{"valid":`...)
	b = strconv.AppendBool(b, resp.Valid)
	b = append(b, `,"code":`...)
	b, ok = appendPlainString(b, string(resp.Code), ok)
	str("key_id", resp.KeyID, true)
	str("account_id", resp.AccountID, true)
	str("name", resp.Name, true)
	str("env", string(resp.Env), true)
	str("tier", resp.Tier, true)
	if len(resp.Scopes) > 0 {
		b = append(b, `,"scopes":[`...)
		for i, s := range resp.Scopes {
			if i > 0 {
				b = append(b, ',')
			}
			b, ok = appendPlainString(b, s, ok)
		}
		b = append(b, ']')
	}
	if len(resp.Meta) > 0 {
		if !plainJSON(resp.Meta) {
			return b, false
		}
		b = append(b, `,"meta":`...)
		b = append(b, resp.Meta...)
	}
	if resp.ExpiresAt != nil {
		t, err := resp.ExpiresAt.MarshalJSON()
		if err != nil {
			return b, false
		}
		b = append(b, `,"expires_at":`...)
		b = append(b, t...)
	}
	str("missing_scope", resp.MissingScope, true)
	if a.limits {
		q := &a.quota
		b = append(b, `,"quota":{"limit":`...)
		b = strconv.AppendInt(b, q.Limit, 10)
		b = append(b, `,"remaining":`...)
		b = strconv.AppendInt(b, q.Remaining, 10)
		b = append(b, `,"reset":`...)
		b = strconv.AppendInt(b, q.Reset, 10)
		b = append(b, '}')
	}
	if a.limits {
		rt := &a.rate
		b = append(b, `,"rate":{"limit":`...)
		b = strconv.AppendInt(b, rt.Limit, 10)
		b = append(b, `,"remaining":`...)
		b = strconv.AppendInt(b, rt.Remaining, 10)
		b = append(b, `,"reset":`...)
		b = strconv.AppendInt(b, rt.Reset, 10)
		b = append(b, `,"window":`...)
		b = strconv.AppendInt(b, rt.Window, 10)
		b = append(b, `,"rate_per_second":`...)
		b, ok = appendFloat(b, rt.RatePerSecond, ok)
		b = append(b, '}')
	}
	if resp.RetryAfter != 0 {
		b = append(b, `,"retry_after":`...)
		b = strconv.AppendInt(b, resp.RetryAfter, 10)
	}
	str("detail", resp.Detail, true)
	b = append(b, "}\n"...)
	return b, ok
}

// appendPlainString appends s quoted when encoding/json would write it
// unchanged: printable ASCII other than `"`, `\`, `<`, `>` and `&`.
func appendPlainString(b []byte, s string, ok bool) ([]byte, bool) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return b, false
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"'), ok
}

// plainJSON reports whether encoding/json would write the raw JSON m as
// it is: compact, ASCII, and nothing it escapes for HTML.
func plainJSON(m json.RawMessage) bool {
	inString := false
	for i := 0; i < len(m); i++ {
		c := m[i]
		switch {
		case c > 0x7e || c < 0x20 || c == '<' || c == '>' || c == '&':
			return false
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case !inString && c == ' ':
			return false
		}
	}
	return json.Valid(m)
}

// appendFloat writes f as encoding/json does for a float64 it can write
// without an exponent.
func appendFloat(b []byte, f float64, ok bool) ([]byte, bool) {
	if a := math.Abs(f); math.IsInf(f, 0) || math.IsNaN(f) || (a != 0 && (a < 1e-6 || a >= 1e21)) {
		return b, false
	}
	return strconv.AppendFloat(b, f, 'f', -1, 64), ok
}

// verifyResponseFields counts the fields appendVerifyAnswer writes, so
// that a test notices a field added to the answer and not to the writer.
const verifyResponseFields = 15
