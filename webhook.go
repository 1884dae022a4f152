package keygate

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"time"
)

// ID prefixes of webhook records.
const (
	PrefixWebhook  = "wh_"
	PrefixMessage  = "msg_" // a webhook event: the webhook-id header
	PrefixDelivery = "whd_"
)

// Webhook event types: what an endpoint subscribes to.
const (
	EventKeyCreated     = "key.created"
	EventKeyRotated     = "key.rotated"
	EventKeyRevoked     = "key.revoked"
	EventKeyExpiring    = "key.expiring"
	EventKeyLeaked      = "key.leaked"
	EventQuotaThreshold = "quota.threshold"
	EventAccountCreated = "account.created"
	// EventWebhookTest is sent by POST /v1/webhooks/{id}/test to that one
	// endpoint, whatever it subscribes to.
	EventWebhookTest = "webhook.test"
)

// WebhookEventTypes lists the event types an endpoint may subscribe to.
var WebhookEventTypes = []string{
	EventKeyCreated, EventKeyRotated, EventKeyRevoked, EventKeyExpiring,
	EventKeyLeaked, EventQuotaThreshold, EventAccountCreated,
}

// RevokeReasonLeaked is the revocation reason that marks a key as leaked:
// revoking with it emits key.leaked besides key.revoked.
const RevokeReasonLeaked = "leaked"

// Audit actions and target type of webhook endpoints.
const (
	ActionWebhookCreated       = "webhook.created"
	ActionWebhookUpdated       = "webhook.updated"
	ActionWebhookDeleted       = "webhook.deleted"
	ActionWebhookSecretRotated = "webhook.secret_rotated"
	TargetWebhook              = "webhook"
)

// Bounds on a webhook endpoint's fields.
const (
	MaxWebhookURLLen         = 2048
	MaxWebhookDescriptionLen = 500
)

// Webhook is an endpoint that receives signed events. Secret is the
// signing secret ("whsec_" and base64); it is never encoded to JSON: the
// API shows it once, when it is made.
type Webhook struct {
	ID          string    `json:"id"`
	URL         string    `json:"url"`
	Events      []string  `json:"events"`
	Description string    `json:"description"`
	Enabled     bool      `json:"enabled"`
	Secret      string    `json:"-"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// Subscribes reports whether w takes events of type typ.
func (w *Webhook) Subscribes(typ string) bool {
	return w.Enabled && slices.Contains(w.Events, typ)
}

// Validate checks w's URL (absolute http or https, with a host and no
// credentials), events and description. Whether the host may be a private
// address is decided when delivering.
func (w *Webhook) Validate() error {
	if err := ValidateWebhookURL(w.URL); err != nil {
		return err
	}
	if len(w.Events) == 0 {
		return Errorf(EINVALID, "events must name at least one event type: %s.", strings.Join(WebhookEventTypes, ", "))
	}
	for _, e := range w.Events {
		if !slices.Contains(WebhookEventTypes, e) {
			return Errorf(EINVALID, "events: %q is not an event type; use %s.", e, strings.Join(WebhookEventTypes, ", "))
		}
	}
	if len(w.Description) > MaxWebhookDescriptionLen {
		return Errorf(EINVALID, "description must be at most %d characters.", MaxWebhookDescriptionLen)
	}
	return CheckText("description", w.Description)
}

// ValidateWebhookURL checks that raw is an absolute http or https URL with
// a host, no user information and no fragment.
func ValidateWebhookURL(raw string) error {
	if raw == "" {
		return Errorf(EINVALID, "url is required.")
	}
	if len(raw) > MaxWebhookURLLen {
		return Errorf(EINVALID, "url must be at most %d characters.", MaxWebhookURLLen)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Hostname() == "" {
		return Errorf(EINVALID, "url must be an absolute http:// or https:// URL, such as https://example.com/hooks/keygate.")
	}
	if u.User != nil {
		return Errorf(EINVALID, "url must not hold a user name or password; authenticate the request by its signature.")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return Errorf(EINVALID, "url must not have a #fragment.")
	}
	return nil
}

// WebhookEvent is one event for the outbox. Payload is the JSON body sent
// to each subscribed endpoint, in the Standard Webhooks shape
// {"type", "timestamp", "data"}; it never holds a plaintext key. An event
// with EndpointID set goes to that endpoint only, whatever it subscribes
// to; otherwise to every enabled endpoint that subscribes to Type.
type WebhookEvent struct {
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	Time       time.Time       `json:"time"`
	Payload    json.RawMessage `json:"payload"`
	EndpointID string          `json:"-"`
}

// NewWebhookEvent returns an event of type typ at t, with a new ID and data
// as its payload's "data".
func NewWebhookEvent(typ string, t time.Time, data any) (WebhookEvent, error) {
	return newWebhookEvent(NewID(PrefixMessage, t), typ, t, data)
}

// NewWebhookEventOnce is NewWebhookEvent with an ID derived from parts: the
// store keeps one event per ID, so an event that several instances (or
// several passes of one) raise for the same reason is delivered once.
func NewWebhookEventOnce(typ string, t time.Time, data any, parts ...string) (WebhookEvent, error) {
	return newWebhookEvent(DerivedID(PrefixMessage, append([]string{typ}, parts...)...), typ, t, data)
}

func newWebhookEvent(id, typ string, t time.Time, data any) (WebhookEvent, error) {
	t = t.UTC().Truncate(time.Millisecond)
	body, err := json.Marshal(struct {
		Type      string    `json:"type"`
		Timestamp time.Time `json:"timestamp"`
		Data      any       `json:"data"`
	}{typ, t, data})
	if err != nil {
		return WebhookEvent{}, Errorf(EINTERNAL, "The %s webhook payload could not be encoded: %v.", typ, err)
	}
	return WebhookEvent{ID: id, Type: typ, Time: t, Payload: body}, nil
}

// DerivedID returns prefix followed by 26 characters derived from parts
// with SHA-256: the same parts always give the same ID.
func DerivedID(prefix string, parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write([]byte(p))
	}
	sum := h.Sum(nil)
	return encodeID(prefix, binary.BigEndian.Uint64(sum[:8]), binary.BigEndian.Uint64(sum[8:16]))
}

// WebhookEventsFor returns the webhook events an audit event raises: the
// store enqueues them in the transaction that commits ev, so an event is
// in the outbox exactly when its change is committed. Their data is the
// audit event's details with the target's ID, the actor and the audit
// event's ID; audit events never hold a plaintext key, so neither do
// these.
func WebhookEventsFor(ev *AuditEvent) []WebhookEvent {
	var types []string
	switch ev.Action {
	case ActionKeyCreated:
		types = []string{EventKeyCreated}
	case ActionKeyRotated:
		types = []string{EventKeyRotated}
	case ActionKeyRevoked:
		types = []string{EventKeyRevoked}
		var d struct {
			Reason string `json:"reason"`
		}
		if json.Unmarshal(ev.Details, &d) == nil && d.Reason == RevokeReasonLeaked {
			types = append(types, EventKeyLeaked)
		}
	case ActionKeyLeaked:
		types = []string{EventKeyLeaked}
	case ActionAccountCreated, ActionAccountRegister:
		types = []string{EventAccountCreated}
	default:
		return nil
	}
	data := map[string]any{}
	if len(ev.Details) > 0 {
		// Details that are not an object are kept whole under "details".
		if json.Unmarshal(ev.Details, &data) != nil {
			data = map[string]any{"details": ev.Details}
		}
	}
	data[ev.TargetType+"_id"] = ev.TargetID
	data["actor"] = ev.Actor
	data["audit_id"] = ev.ID
	out := make([]WebhookEvent, 0, len(types))
	for _, typ := range types {
		we, err := NewWebhookEventOnce(typ, ev.Time, data, ev.ID)
		if err != nil {
			continue // data came from JSON and re-encodes; unreachable
		}
		out = append(out, we)
	}
	return out
}

// Delivery states.
const (
	DeliveryPending   = "pending"
	DeliverySucceeded = "succeeded"
	DeliveryFailed    = "failed"
)

// WebhookDelivery is one event's delivery to one endpoint: its state and
// its last attempt. A pending delivery is retried at NextAttemptAt until
// it succeeds or GiveUpAt passes.
type WebhookDelivery struct {
	ID            string     `json:"id"`
	WebhookID     string     `json:"webhook_id"`
	EventID       string     `json:"event_id"`
	EventType     string     `json:"event_type"`
	Status        string     `json:"status"`
	Attempts      int        `json:"attempts"`
	CreatedAt     time.Time  `json:"created_at"`
	NextAttemptAt *time.Time `json:"next_attempt_at"`
	GiveUpAt      time.Time  `json:"give_up_at"`
	LastAttemptAt *time.Time `json:"last_attempt_at"`
	// LastStatus is the HTTP status of the last attempt; 0 when it got no
	// answer (LastError says why).
	LastStatus  int        `json:"last_status"`
	LastError   string     `json:"last_error"`
	DeliveredAt *time.Time `json:"delivered_at"`

	// Filled by ClaimDeliveries for the sender: the body, the endpoint's
	// URL and secret. Never encoded.
	Payload json.RawMessage `json:"-"`
	URL     string          `json:"-"`
	Secret  string          `json:"-"`
}

// DeliveryAttempt is the result of one attempt to deliver, for
// RecordDeliveryAttempt. A failed attempt with a zero NextAttemptAt gives
// the delivery up (failed).
type DeliveryAttempt struct {
	At            time.Time
	Succeeded     bool
	Status        int
	Error         string
	NextAttemptAt time.Time
}

// DeliveryFilter selects an endpoint's deliveries, newest first; Before is
// the cursor (the last ID of the previous page).
type DeliveryFilter struct {
	WebhookID string
	Status    string
	Before    string
	Limit     int
}

// WebhookRetention is how long after its first attempt a delivery is
// retried before it is marked failed.
const WebhookRetention = 24 * time.Hour

// WebhookStore keeps webhook endpoints and the outbox. Every write method
// on Store that takes audit events also enqueues the webhook events they
// raise (WebhookEventsFor), with a delivery for each endpoint subscribed
// at that moment, in the same transaction.
type WebhookStore interface {
	CreateWebhook(ctx context.Context, w *Webhook, ev ...*AuditEvent) error
	// UpdateWebhook replaces the URL, events, description, enabled flag
	// and secret of the stored endpoint; ENOTFOUND if there is none.
	UpdateWebhook(ctx context.Context, w *Webhook, ev ...*AuditEvent) error
	// DeleteWebhook deletes the endpoint and its deliveries.
	DeleteWebhook(ctx context.Context, id string, ev ...*AuditEvent) error
	Webhook(ctx context.Context, id string) (*Webhook, error)
	// Webhooks returns every endpoint, oldest first.
	Webhooks(ctx context.Context) ([]*Webhook, error)

	// EnqueueWebhookEvents stores events that no write raises (expiry
	// warnings, quota thresholds, tests) with their deliveries, skipping
	// any whose ID is already stored, and returns how many it stored.
	EnqueueWebhookEvents(ctx context.Context, evs []WebhookEvent) (int, error)
	// ClaimDeliveries returns up to limit pending deliveries due at now,
	// with their payload, URL and secret, and leases them until
	// now+lease: no other call claims them meanwhile, and a claimer that
	// dies lets the lease run out and the delivery be claimed again.
	ClaimDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]*WebhookDelivery, error)
	// RecordDeliveryAttempt records an attempt on a claimed delivery and
	// ends its lease. ENOTFOUND if there is no such pending delivery.
	RecordDeliveryAttempt(ctx context.Context, id string, a DeliveryAttempt) error
	// WebhookDeliveries returns the deliveries f selects, newest first.
	WebhookDeliveries(ctx context.Context, f DeliveryFilter) ([]*WebhookDelivery, error)
	WebhookDelivery(ctx context.Context, id string) (*WebhookDelivery, error)
	// Redeliver makes a delivery pending again, due at now, retried until
	// now+WebhookRetention.
	Redeliver(ctx context.Context, id string, now time.Time) (*WebhookDelivery, error)
	// PruneWebhookDeliveries deletes succeeded and failed deliveries
	// created before before, and events left without deliveries, and
	// returns how many deliveries it deleted.
	PruneWebhookDeliveries(ctx context.Context, before time.Time) (int64, error)
	// ExpiringKeys returns the keys not revoked whose expiry is in
	// [from, to).
	ExpiringKeys(ctx context.Context, from, to time.Time) ([]*Key, error)
}

// QuotaThreshold reports that a daily quota's count for the UTC day
// reached a share of the quota: Percent is 80 or 100. The engine detects
// it as the counting request (of key KeyID) passes, and hands it on
// without blocking. Counter is what was counted (the CounterID): the
// account's ID for an account-wide quota, the key's rotation lineage for
// a key's own.
type QuotaThreshold struct {
	KeyID     string
	AccountID string
	Counter   string
	Percent   int
	Used      int64
	Limit     int64
	Time      time.Time
}

// QuotaThresholdPercents are the shares of a daily quota that raise
// quota.threshold, in increasing order.
var QuotaThresholdPercents = [...]int{80, 100}

// QuotaThresholdAt returns the count at which a daily quota of limit
// reaches p percent: the first whole count at or above it. Exactly one
// request of a day takes the count there, so it alone reports it.
func QuotaThresholdAt(limit int64, p int) int64 {
	return (limit*int64(p) + 99) / 100
}

// Scope returns whose quota q is about: QuotaScopeAccount when an
// account's keys count together, QuotaScopeKey otherwise.
func (q *QuotaThreshold) Scope() string {
	if strings.HasPrefix(q.Counter, PrefixAccount) {
		return QuotaScopeAccount
	}
	return QuotaScopeKey
}
