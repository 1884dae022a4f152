package sqlstore

import "github.com/keygate/keygate"

// WebhookEvents returns the webhook events that the audit events raise,
// followed by the events given.
func WebhookEvents(audit []*keygate.AuditEvent, given []keygate.WebhookEvent) []keygate.WebhookEvent {
	var evs []keygate.WebhookEvent
	for _, ev := range audit {
		evs = append(evs, keygate.WebhookEventsFor(ev)...)
	}
	return append(evs, given...)
}

// WebhookTargets returns the IDs of the endpoints that get a delivery of
// ev: the one it names, or else every endpoint subscribed to its type.
// endpoints are the enabled ones.
func WebhookTargets(endpoints []*keygate.Webhook, ev keygate.WebhookEvent) []string {
	var targets []string
	for _, w := range endpoints {
		if (ev.EndpointID == "" && w.Subscribes(ev.Type)) || ev.EndpointID == w.ID {
			targets = append(targets, w.ID)
		}
	}
	return targets
}
