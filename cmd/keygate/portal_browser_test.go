package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumPath is where Debian's chromium package puts the browser.
const chromiumPath = "/usr/bin/chromium"

// screenshotDir is where the browser test leaves its screenshots; it is
// git-ignored.
var screenshotDir = filepath.Join("..", "..", "screenshots")

// browserTest is a headless Chromium driving a real `keygate serve`.
type browserTest struct {
	t   *testing.T
	ctx context.Context
	srv *server
}

func newBrowserTest(t *testing.T, srv *server) *browserTest {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("KEYGATE_REQUIRE_SERVICES") == "1" {
			t.Fatalf("the browser test needs Chromium at %s (apt-get install chromium): %v", chromiumPath, err)
		}
		t.Skipf("skipping the browser test: no Chromium at %s (apt-get install chromium; set KEYGATE_REQUIRE_SERVICES=1 to fail instead)", chromiumPath)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.Headless,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("headless", "new"),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	// Bounds the whole test, should the browser hang.
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
		t.Fatal(err)
	}
	b := &browserTest{t: t, ctx: ctx, srv: srv}
	b.do(chromedp.EmulateViewport(1280, 900))
	return b
}

func (b *browserTest) do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		b.t.Fatalf("browser: %v\nserver log:\n%s", err, b.srv.stderr)
	}
}

// open navigates to a portal path and waits for its heading.
func (b *browserTest) open(path string) {
	b.t.Helper()
	b.do(chromedp.Navigate(b.srv.url+path), chromedp.WaitVisible(chromedp.CSS("main h1")))
}

func (b *browserTest) value(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Value(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("value of %s: %v", sel, err)
	}
	return s
}

func (b *browserTest) eval(js string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](js))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", js, err)
	}
	return s
}

// html returns the page's main content.
func (b *browserTest) html() string { return b.eval(`document.querySelector("main").innerText`) }

func (b *browserTest) screenshot(name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(filepath.Join(screenshotDir, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// fitsWidth checks that the page needs no sideways scrolling: wide tables
// scroll inside their own box.
func (b *browserTest) fitsWidth(what string) {
	b.t.Helper()
	if got := b.eval(`String(document.documentElement.scrollWidth <= window.innerWidth)`); got != "true" {
		b.t.Errorf("%s: the page is wider than the %s px window", what, b.eval(`String(window.innerWidth)`))
	}
}

// tableRow reads the row of the usage table with the id whose data-value
// is value: each cell's text under its column's header text. It returns
// nil when the table has no such row.
func (b *browserTest) tableRow(table, value string) map[string]string {
	b.t.Helper()
	sel, _ := json.Marshal("#" + table + " tr[data-value=" + strconv.Quote(value) + "] > *")
	head, _ := json.Marshal("#" + table + " thead th")
	cells := b.eval(`JSON.stringify(Array.from(document.querySelectorAll(` + string(sel) + `), c => c.innerText.trim()))`)
	heads := b.eval(`JSON.stringify(Array.from(document.querySelectorAll(` + string(head) + `), c => c.innerText.trim()))`)
	var cs, hs []string
	if err := json.Unmarshal([]byte(cells), &cs); err != nil {
		b.t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(heads), &hs); err != nil {
		b.t.Fatal(err)
	}
	if len(cs) == 0 {
		return nil
	}
	row := map[string]string{}
	for i, c := range cs {
		if i < len(hs) {
			row[hs[i]] = c
		}
	}
	return row
}

// wantLatencies checks that a usage table's row shows p50, p95 and p99.
func wantLatencies(t *testing.T, what string, row map[string]string) {
	t.Helper()
	for _, p := range []string{"p50", "p95", "p99"} {
		if v := row[p]; !strings.HasSuffix(v, " ms") && !strings.HasSuffix(v, " s") {
			t.Errorf("%s: %s is %q, want a latency", what, p, v)
		}
	}
}

// callAPI makes a keyed request to the API as an application would.
func callAPI(t *testing.T, srv *server, key string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", srv.url+"/demo/weather", nil)
	req.Header.Set("X-API-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestPortalInBrowser walks the developer's path in a real browser: sign
// up, create a key, read it once, call the API with it, see the call in the
// usage chart and under its route, outcome and status class, rotate,
// revoke, and find the old key refused and its refused call counted; then
// the operator's path: sign in with the root key, see the busiest account,
// keys and routes, find a key, revoke it.
func TestPortalInBrowser(t *testing.T) {
	dir := t.TempDir()
	rootFile := filepath.Join(dir, "root.key")
	srv := startServer(t, "--db", filepath.Join(dir, "keygate.db"), "--root-key-file", rootFile, "--default-scopes", "weather:read")
	b := newBrowserTest(t, srv)

	// Sign up: the first key is shown once.
	b.open("/portal/signup")
	b.do(
		chromedp.SendKeys(chromedp.CSS("#name"), "Ada Lovelace"),
		chromedp.SendKeys(chromedp.CSS("#email"), "ada@example.com"),
		chromedp.SendKeys(chromedp.CSS("#password"), "correct horse battery staple"),
		chromedp.Click(chromedp.CSS(`main form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS("#new-key")),
	)
	first := b.value("#new-key")
	if !strings.HasPrefix(first, "kg_live_") {
		t.Fatalf("sign-up key: got %q", first)
	}
	if !strings.Contains(b.html(), "You will not see this key again") {
		t.Errorf("the new key's page lacks the warning")
	}
	// The copy button appears with JavaScript and reports what it did.
	b.do(chromedp.WaitVisible(chromedp.CSS("button.copy")), chromedp.Click(chromedp.CSS("button.copy")))
	if _, err := chromedp.Run(b.ctx, chromedp.Poll[bool](`document.querySelector(".copy-status").textContent.length > 0`)); err != nil {
		t.Errorf("the copy button said nothing: %v", err)
	}
	b.screenshot("01-signup-key")

	// Create a key with a scope, by keyboard for the name.
	b.open("/portal/keys")
	b.do(
		chromedp.SendKeys(chromedp.CSS("#name"), "weather app"),
		chromedp.Click(chromedp.CSS(`input[name=scopes][value="weather:read"]`)),
		chromedp.Click(chromedp.CSS(`#create-heading + form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS("#new-key")),
	)
	key := b.value("#new-key")
	b.screenshot("02-new-key")
	b.open("/portal/keys")
	if page := b.eval(`document.documentElement.outerHTML`); strings.Contains(page, key) {
		t.Fatalf("the keys page shows the key again")
	}
	if !strings.Contains(b.html(), key[:12]+"…"+key[len(key)-4:]) {
		t.Errorf("the keys page does not list %s…%s", key[:12], key[len(key)-4:])
	}
	b.screenshot("03-keys")

	// Call the API with it; the usage page shows the call once the usage
	// buffer has flushed (every 200ms).
	if got := callAPI(t, srv, key); got != http.StatusOK {
		t.Fatalf("API call with the new key: got %d, want 200", got)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		b.open("/portal/usage")
		if strings.Contains(b.eval(`document.querySelector("#chart-desc").textContent`), "1 requests in the last 30 days") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the usage chart never showed the call: %q", b.eval(`document.querySelector("#chart-desc").textContent`))
		}
		time.Sleep(200 * time.Millisecond)
	}
	if n := b.eval(`String(document.querySelectorAll("svg.chart rect.valid").length)`); n != "1" {
		t.Errorf("usage chart: got %s valid bars, want 1", n)
	}
	if u := b.html(); !strings.Contains(u, "999") || !strings.Contains(u, "valid") {
		t.Errorf("usage page: want 999 of 1,000 left and the valid outcome:\n%s", u)
	}
	// Today's tables show the call under its route and outcome, timed.
	if got := b.eval(`document.querySelector('#outcomes li[data-outcome="valid"] strong').textContent`); got != "1" {
		t.Errorf("outcomes: got %q valid requests, want 1", got)
	}
	route := b.tableRow("routes", "/demo/weather")
	if route["Route"] != "/demo/weather" || route["Requests"] != "1" || route["Valid"] != "1" {
		t.Errorf("by route: got %v, want /demo/weather with 1 valid request", route)
	}
	wantLatencies(t, "by route", route)
	if got := b.tableRow("keys", ""); got != nil {
		t.Errorf("by key: a row without a key: %v", got)
	}
	if got := b.eval(`document.querySelector('#statuses tr[data-class="2xx"] td').textContent`); got != "1" {
		t.Errorf("by status: got %q requests of class 2xx, want 1", got)
	}
	b.screenshot("04-usage")

	// Rotate with a grace period: both keys work meanwhile.
	b.open("/portal/keys")
	rotate := `form.rotate[aria-label="Rotate ` + key[:12] + `…` + key[len(key)-4:] + `"]`
	b.do(
		chromedp.SetValue(chromedp.CSS(rotate+" select"), "1h"),
		chromedp.Click(chromedp.CSS(rotate+" button")),
		chromedp.WaitVisible(chromedp.CSS("#new-key")),
	)
	rotated := b.value("#new-key")
	if !strings.Contains(b.html(), "keeps working until") {
		t.Errorf("the rotation page does not say until when the old key works")
	}
	for _, k := range []string{key, rotated} {
		if got := callAPI(t, srv, k); got != http.StatusOK {
			t.Errorf("during the grace period: got %d, want 200", got)
		}
	}

	// Revoke the old key at once, after the confirmation step.
	b.open("/portal/keys")
	b.do(
		chromedp.Click(chromedp.CSS(`a[aria-label="Revoke `+key[:12]+`…`+key[len(key)-4:]+`"]`)),
		chromedp.WaitVisible(chromedp.CSS(`input[name=confirm]`)),
		chromedp.Click(chromedp.CSS(`button.danger[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(".error, .field-error")),
	)
	if got := callAPI(t, srv, key); got != http.StatusOK {
		t.Fatalf("an unconfirmed revocation took effect: got %d", got)
	}
	b.do(
		chromedp.Click(chromedp.CSS(`input[name=confirm]`)),
		chromedp.SendKeys(chromedp.CSS("#reason"), "moved to the rotated key"),
		chromedp.Click(chromedp.CSS(`button.danger[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(".notice")),
	)
	if got := callAPI(t, srv, key); got != http.StatusUnauthorized {
		t.Errorf("revoked key: got %d, want 401", got)
	}
	if got := callAPI(t, srv, rotated); got != http.StatusOK {
		t.Errorf("the rotated key: got %d, want 200", got)
	}

	// Six calls so far, five valid and one with the revoked key: the usage
	// page shows the refused one under its route and outcome.
	deadline = time.Now().Add(10 * time.Second)
	for {
		b.open("/portal/usage")
		if strings.Contains(b.eval(`document.querySelector("#period-heading").textContent`), "6 requests") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the usage page never counted six calls: %q", b.eval(`document.querySelector("#period-heading").textContent`))
		}
		time.Sleep(200 * time.Millisecond)
	}
	route = b.tableRow("routes", "/demo/weather")
	if route["Requests"] != "6" || route["Valid"] != "5" || route["Revoked key"] != "1" {
		t.Errorf("by route: got %v, want 6 requests, 5 valid, 1 with a revoked key", route)
	}
	wantLatencies(t, "by route", route)
	if got := b.eval(`document.querySelector('#outcomes li[data-outcome="revoked"] strong').textContent`); got != "1" {
		t.Errorf("outcomes: got %q revoked, want 1", got)
	}
	if got := b.eval(`document.querySelector('#statuses tr[data-class="4xx"] td').textContent`); got != "1" {
		t.Errorf("by status: got %q requests of class 4xx, want 1", got)
	}
	if empty := b.tableRow("keys", ""); empty != nil {
		t.Errorf("by key: a row without a key: %v", empty)
	}
	b.screenshot("04-usage-routes")
	// The same for the old key alone, through the picker.
	b.do(chromedp.SetValue(chromedp.CSS("#key"), b.eval(`document.querySelector('#keys tbody tr:first-child').dataset.value`)))
	if _, err := chromedp.RunResponse(b.ctx, chromedp.Click(chromedp.CSS(`form.filters button[type=submit]`))); err != nil {
		t.Fatalf("show one key's usage: %v", err)
	}
	b.do(chromedp.WaitVisible(chromedp.CSS("#period-heading")))
	if h := b.eval(`document.querySelector("#period-heading").textContent`); !strings.Contains(h, "4 requests with this key") {
		t.Errorf("the old key's usage: got %q, want its 4 requests", h)
	}

	// A phone-sized window: nothing needs sideways scrolling.
	b.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	for _, p := range []string{"keys", "usage"} {
		b.open("/portal/" + p)
		b.fitsWidth(p + " at 390 px")
		b.screenshot("05-" + p + "-390px")
	}
	b.do(chromedp.EmulateViewport(1280, 900))

	// Sign out and back in by keyboard alone.
	b.do(chromedp.Click(chromedp.CSS(`form[action="/portal/logout"] button`)), chromedp.WaitVisible(chromedp.CSS("#email")))
	b.do(
		chromedp.Focus(chromedp.CSS("#email")),
		chromedp.KeyEvent("ada@example.com\tcorrect horse battery staple\n"),
		chromedp.WaitVisible(chromedp.CSS("#create-heading")),
	)
	b.do(chromedp.Click(chromedp.CSS(`form[action="/portal/logout"] button`)), chromedp.WaitVisible(chromedp.CSS("#email")))

	// The operator: root key typed into the form, find the rotated key by
	// its start, revoke it.
	root, err := os.ReadFile(rootFile)
	if err != nil {
		t.Fatal(err)
	}
	b.open("/portal/admin/login")
	b.do(
		chromedp.SendKeys(chromedp.CSS("#root_key"), strings.TrimSpace(string(root))),
		chromedp.Click(chromedp.CSS(`main form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS("svg.chart")),
	)
	if loc, _ := chromedp.Run(b.ctx, chromedp.Location()); strings.Contains(loc, "kgr_") {
		t.Fatalf("the root key is in the URL: %s", loc)
	}
	// The overview ranks Ada's account and keys and splits the calls by route.
	if a := b.eval(`document.querySelector("#top-accounts tbody tr th").innerText`); !strings.Contains(a, "ada@example.com") {
		t.Errorf("busiest accounts: got %q first, want ada@example.com", a)
	}
	if n := b.eval(`String(document.querySelectorAll("#top-keys tbody tr").length)`); n != "2" {
		t.Errorf("busiest keys: got %s, want the old key and the rotated one", n)
	}
	route = b.tableRow("routes", "/demo/weather")
	if route["Requests"] != "6" || route["Revoked key"] != "1" {
		t.Errorf("overview by route: got %v, want 6 requests, 1 with a revoked key", route)
	}
	wantLatencies(t, "overview by route", route)
	b.screenshot("06-admin-overview")
	b.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	b.open("/portal/admin?period=7d")
	b.fitsWidth("admin overview at 390 px")
	b.screenshot("06-admin-overview-390px")
	b.do(chromedp.EmulateViewport(1280, 900))
	b.open("/portal/admin/keys")
	b.do(
		chromedp.SendKeys(chromedp.CSS("#q"), rotated[:12]),
	)
	// The list without a query had a table too: wait for the search's page.
	if _, err := chromedp.RunResponse(b.ctx, chromedp.Click(chromedp.CSS(`form[role=search] button`))); err != nil {
		t.Fatalf("search: %v", err)
	}
	b.do(chromedp.WaitVisible(chromedp.CSS("table.keys")))
	if rows := b.eval(`String(document.querySelectorAll("table.keys tbody tr").length)`); rows != "1" {
		t.Fatalf("find by start: got %s rows, want 1", rows)
	}
	b.screenshot("07-admin-find-key")
	b.do(
		chromedp.Click(chromedp.CSS(`table.keys a.danger`)),
		chromedp.WaitVisible(chromedp.CSS(`input[name=confirm]`)),
		chromedp.Click(chromedp.CSS(`input[name=confirm]`)),
		chromedp.Click(chromedp.CSS(`button.danger[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(".notice")),
	)
	if got := callAPI(t, srv, rotated); got != http.StatusUnauthorized {
		t.Errorf("key revoked by the operator: got %d, want 401", got)
	}
	b.open("/portal/admin/audit?action=key.revoked")
	if a := b.html(); strings.Count(a, "key.revoked") < 2 {
		t.Errorf("audit log: want both revocations:\n%s", a)
	}
	b.screenshot("08-admin-audit")
}
