package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/problem"
)

// Client calls a keygate server's admin API with a root key. The CLI is
// built on it.
type Client struct {
	BaseURL string
	RootKey string
	HTTP    *http.Client
}

// NewClient returns a Client for the server at baseURL.
func NewClient(baseURL, rootKey string) *Client {
	return &Client{
		BaseURL: strings.TrimRight(baseURL, "/"),
		RootKey: rootKey,
		HTTP:    &http.Client{Timeout: 30 * time.Second},
	}
}

// Error is a problem+json answer from the server.
type Error struct {
	Problem problem.Problem
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s (%d %s): %s", e.Problem.Code, e.Problem.Status, http.StatusText(e.Problem.Status), e.Problem.Detail)
}

// ErrorCode returns the problem code of an *Error in err's chain, or "".
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Problem.Code
	}
	return ""
}

// shownURL is BaseURL for messages: a password in it is masked.
func (c *Client) shownURL() string {
	if u, err := url.Parse(c.BaseURL); err == nil {
		return u.Redacted()
	}
	return "the configured server URL"
}

func (c *Client) do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	u := c.BaseURL + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return fmt.Errorf("bad server URL %q: %w", c.shownURL(), err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.RootKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.RootKey)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach keygate at %s: %w", c.shownURL(), err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("reading the answer from %s: %w", c.shownURL(), err)
	}
	if resp.StatusCode >= 300 {
		e := &Error{}
		if json.Unmarshal(data, &e.Problem) != nil || e.Problem.Code == "" {
			e.Problem = problem.Problem{Status: resp.StatusCode, Code: "HTTP_" + fmt.Sprint(resp.StatusCode), Detail: strings.TrimSpace(string(data))}
		}
		return e
	}
	if out == nil {
		return nil
	}
	if raw, ok := out.(*rawBody); ok {
		*raw = data
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("the server at %s answered with unexpected JSON: %w", c.shownURL(), err)
	}
	return nil
}

// CreateAccount creates an account.
func (c *Client) CreateAccount(ctx context.Context, req AccountRequest) (*keygate.Account, error) {
	return call[keygate.Account](ctx, c, http.MethodPost, "/v1/accounts", nil, req)
}

// Accounts lists one page of accounts; q holds email, tier, cursor, limit.
func (c *Client) Accounts(ctx context.Context, q url.Values) (*List[*keygate.Account], error) {
	return call[List[*keygate.Account]](ctx, c, http.MethodGet, "/v1/accounts", q, nil)
}

// Account returns one account.
func (c *Client) Account(ctx context.Context, id string) (*keygate.Account, error) {
	return call[keygate.Account](ctx, c, http.MethodGet, "/v1/accounts/"+url.PathEscape(id), nil, nil)
}

// CreateKey issues a key; the answer's Plaintext is the key, shown once.
func (c *Client) CreateKey(ctx context.Context, req KeyRequest) (*KeyView, error) {
	return call[KeyView](ctx, c, http.MethodPost, "/v1/keys", nil, req)
}

// Keys lists one page of keys; q holds account_id, tier, env, status,
// cursor, limit.
func (c *Client) Keys(ctx context.Context, q url.Values) (*List[KeyView], error) {
	return call[List[KeyView]](ctx, c, http.MethodGet, "/v1/keys", q, nil)
}

// Key returns one key record.
func (c *Client) Key(ctx context.Context, id string) (*KeyView, error) {
	return call[KeyView](ctx, c, http.MethodGet, "/v1/keys/"+url.PathEscape(id), nil, nil)
}

// RevokeKey revokes a key at once.
func (c *Client) RevokeKey(ctx context.Context, id, reason string) (*KeyView, error) {
	return call[KeyView](ctx, c, http.MethodPost, "/v1/keys/"+url.PathEscape(id)+"/revoke", nil, RevokeRequest{Reason: reason})
}

// Tiers lists the tiers.
func (c *Client) Tiers(ctx context.Context) ([]*keygate.Tier, error) {
	var l List[*keygate.Tier]
	if err := c.do(ctx, http.MethodGet, "/v1/tiers", nil, nil, &l); err != nil {
		return nil, err
	}
	return l.Data, nil
}

// Verify asks the server whether a key may make a request. It needs a root
// key with the verify permission.
func (c *Client) Verify(ctx context.Context, req VerifyRequest) (*VerifyResponse, error) {
	return call[VerifyResponse](ctx, c, http.MethodPost, "/v1/keys/verify", nil, req)
}

// UpdateKey changes the fields set in p (PATCH /v1/keys/{id}); use Some to
// set a field and Null to clear it.
func (c *Client) UpdateKey(ctx context.Context, id string, p KeyPatch) (*KeyView, error) {
	return call[KeyView](ctx, c, http.MethodPatch, "/v1/keys/"+url.PathEscape(id), nil, p)
}

// RotateKey issues a key in place of id; the old key keeps working for
// grace (a Go duration such as "24h"; "0s" revokes it at once). The
// answer is the new key, with its plaintext shown this once.
func (c *Client) RotateKey(ctx context.Context, id, grace string) (*KeyView, error) {
	return call[KeyView](ctx, c, http.MethodPost, "/v1/keys/"+url.PathEscape(id)+"/rotate", nil, RotateRequest{Grace: grace})
}

// EnableKey lets a disabled key verify again.
func (c *Client) EnableKey(ctx context.Context, id string) (*KeyView, error) {
	return call[KeyView](ctx, c, http.MethodPost, "/v1/keys/"+url.PathEscape(id)+"/enable", nil, nil)
}

// DisableKey makes a key answer DISABLED until it is enabled again.
func (c *Client) DisableKey(ctx context.Context, id string) (*KeyView, error) {
	return call[KeyView](ctx, c, http.MethodPost, "/v1/keys/"+url.PathEscape(id)+"/disable", nil, nil)
}

// ImportKeys stores keys issued elsewhere, known by their SHA-256 hex, in
// one call of at most manage.MaxImportBatch rows. Invalid rows are reported
// by their index in req.Keys.
func (c *Client) ImportKeys(ctx context.Context, req ImportRequest) (*ImportResult, error) {
	return call[ImportResult](ctx, c, http.MethodPost, "/v1/keys/import", nil, req)
}

// UpdateAccount changes the fields set in p.
func (c *Client) UpdateAccount(ctx context.Context, id string, p AccountPatch) (*keygate.Account, error) {
	return call[keygate.Account](ctx, c, http.MethodPatch, "/v1/accounts/"+url.PathEscape(id), nil, p)
}

// Tier returns one tier.
func (c *Client) Tier(ctx context.Context, name string) (*keygate.Tier, error) {
	return call[keygate.Tier](ctx, c, http.MethodGet, "/v1/tiers/"+url.PathEscape(name), nil, nil)
}

// CreateTier creates a tier.
func (c *Client) CreateTier(ctx context.Context, req TierRequest) (*keygate.Tier, error) {
	return call[keygate.Tier](ctx, c, http.MethodPost, "/v1/tiers", nil, req)
}

// UpdateTier changes a tier's limits; the change applies to every key on
// the tier at once.
func (c *Client) UpdateTier(ctx context.Context, name string, p TierPatch) (*keygate.Tier, error) {
	return call[keygate.Tier](ctx, c, http.MethodPatch, "/v1/tiers/"+url.PathEscape(name), nil, p)
}

// DeleteTier deletes a tier that no account or key uses.
func (c *Client) DeleteTier(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/v1/tiers/"+url.PathEscape(name), nil, nil, nil)
}

// Audit lists one page of audit events, newest first; q holds actor,
// action, target_type, target_id, since, until, cursor, limit.
func (c *Client) Audit(ctx context.Context, q url.Values) (*List[*keygate.AuditEvent], error) {
	return call[List[*keygate.AuditEvent]](ctx, c, http.MethodGet, "/v1/audit", q, nil)
}

// CreateRootKey creates a root key; the answer's Plaintext is the key,
// shown once.
func (c *Client) CreateRootKey(ctx context.Context, req RootKeyRequest) (*RootKeyView, error) {
	return call[RootKeyView](ctx, c, http.MethodPost, "/v1/root-keys", nil, req)
}

// RootKeys lists the root keys, revoked ones included.
func (c *Client) RootKeys(ctx context.Context) ([]RootKeyView, error) {
	var l List[RootKeyView]
	if err := c.do(ctx, http.MethodGet, "/v1/root-keys", nil, nil, &l); err != nil {
		return nil, err
	}
	return l.Data, nil
}

// RevokeRootKey revokes a root key at once.
func (c *Client) RevokeRootKey(ctx context.Context, id string) (*RootKeyView, error) {
	return call[RootKeyView](ctx, c, http.MethodPost, "/v1/root-keys/"+url.PathEscape(id)+"/revoke", nil, nil)
}

// Usage returns aggregated usage; q holds key_id, account_id, from, to and
// granularity.
func (c *Client) Usage(ctx context.Context, q url.Values) (*UsageResponse, error) {
	return call[UsageResponse](ctx, c, http.MethodGet, "/v1/usage", q, nil)
}

// UsageCSV returns aggregated usage as the server's CSV export.
func (c *Client) UsageCSV(ctx context.Context, q url.Values) ([]byte, error) {
	q2 := url.Values{}
	for k, v := range q {
		q2[k] = v
	}
	q2.Set("format", "csv")
	var raw rawBody
	if err := c.do(ctx, http.MethodGet, "/v1/usage", q2, nil, &raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// call sends one request and decodes the answer into a new T. On any
// error it returns nil, never a half-filled value.
func call[T any](ctx context.Context, c *Client, method, path string, query url.Values, body any) (*T, error) {
	var v T
	if err := c.do(ctx, method, path, query, body, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// rawBody takes an answer as it is, for non-JSON bodies.
type rawBody []byte

// CreateWebhook registers an endpoint; the answer's Secret is its signing
// secret, shown this once.
func (c *Client) CreateWebhook(ctx context.Context, req WebhookRequest) (*WebhookSecretView, error) {
	return call[WebhookSecretView](ctx, c, http.MethodPost, "/v1/webhooks", nil, req)
}

// Webhooks lists the endpoints, oldest first.
func (c *Client) Webhooks(ctx context.Context) ([]*keygate.Webhook, error) {
	var l List[*keygate.Webhook]
	if err := c.do(ctx, http.MethodGet, "/v1/webhooks", nil, nil, &l); err != nil {
		return nil, err
	}
	return l.Data, nil
}

// Webhook returns one endpoint, without its secret.
func (c *Client) Webhook(ctx context.Context, id string) (*keygate.Webhook, error) {
	return call[keygate.Webhook](ctx, c, http.MethodGet, "/v1/webhooks/"+url.PathEscape(id), nil, nil)
}

// UpdateWebhook changes the fields set in p.
func (c *Client) UpdateWebhook(ctx context.Context, id string, p WebhookPatch) (*keygate.Webhook, error) {
	return call[keygate.Webhook](ctx, c, http.MethodPatch, "/v1/webhooks/"+url.PathEscape(id), nil, p)
}

// DeleteWebhook deletes an endpoint and its delivery log.
func (c *Client) DeleteWebhook(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/v1/webhooks/"+url.PathEscape(id), nil, nil, nil)
}

// RotateWebhookSecret gives an endpoint a new signing secret, shown this
// once; deliveries are signed with it from then on.
func (c *Client) RotateWebhookSecret(ctx context.Context, id string) (*WebhookSecretView, error) {
	return call[WebhookSecretView](ctx, c, http.MethodPost, "/v1/webhooks/"+url.PathEscape(id)+"/rotate-secret", nil, nil)
}

// TestWebhook queues a webhook.test event for that endpoint alone.
func (c *Client) TestWebhook(ctx context.Context, id string) (*keygate.WebhookEvent, error) {
	return call[keygate.WebhookEvent](ctx, c, http.MethodPost, "/v1/webhooks/"+url.PathEscape(id)+"/test", nil, nil)
}

// WebhookDeliveries lists one page of an endpoint's deliveries, newest
// first; q holds status, cursor, limit.
func (c *Client) WebhookDeliveries(ctx context.Context, id string, q url.Values) (*List[*keygate.WebhookDelivery], error) {
	return call[List[*keygate.WebhookDelivery]](ctx, c, http.MethodGet, "/v1/webhooks/"+url.PathEscape(id)+"/deliveries", q, nil)
}

// Redeliver sends a delivery again, as soon as the dispatcher can.
func (c *Client) Redeliver(ctx context.Context, webhookID, deliveryID string) (*keygate.WebhookDelivery, error) {
	return call[keygate.WebhookDelivery](ctx, c, http.MethodPost, "/v1/webhooks/"+url.PathEscape(webhookID)+"/deliveries/"+url.PathEscape(deliveryID)+"/redeliver", nil, nil)
}

// CreateInvite issues an invitation code; the answer holds the code this
// once.
func (c *Client) CreateInvite(ctx context.Context, req InviteRequest) (*InviteView, error) {
	return call[InviteView](ctx, c, http.MethodPost, "/v1/invites", nil, req)
}

// Invites lists invitations newest first; q holds limit and cursor.
func (c *Client) Invites(ctx context.Context, q url.Values) (*List[InviteView], error) {
	return call[List[InviteView]](ctx, c, http.MethodGet, "/v1/invites", q, nil)
}

// Invite returns one invitation, without its code.
func (c *Client) Invite(ctx context.Context, id string) (*InviteView, error) {
	return call[InviteView](ctx, c, http.MethodGet, "/v1/invites/"+url.PathEscape(id), nil, nil)
}

// RevokeInvite makes an unused invitation unusable.
func (c *Client) RevokeInvite(ctx context.Context, id string) (*InviteView, error) {
	return call[InviteView](ctx, c, http.MethodPost, "/v1/invites/"+url.PathEscape(id)+"/revoke", nil, nil)
}

// UsageTop returns the keys or accounts with the most requests in a
// period; q holds by (key or account), key_id, account_id, from, to,
// granularity and limit.
func (c *Client) UsageTop(ctx context.Context, q url.Values) (*UsageTopResponse, error) {
	return call[UsageTopResponse](ctx, c, http.MethodGet, "/v1/usage/top", q, nil)
}
