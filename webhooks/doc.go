// Package webhooks delivers a team's event feed to webhook endpoints:
// signed per Standard Webhooks 1.0, in feed order, at least once, over an
// HTTP client that refuses to reach into private networks.
//
// An endpoint is a cursor over the feed. The package holds no state of
// its own: the store implements EventSource (read the feed after a
// cursor) and StateSink (save an endpoint's state and the attempt that
// led to it), a queue worker calls Runner.Run for one endpoint at a time,
// and the admin API uses NewSecret, ValidateURL, Keys.Rotate,
// State.Enabled and State.Replayed.
//
// # Signing
//
// A secret is "whsec_" and the standard base64 of a 24 to 64 byte key
// (NewSecret makes 32). Each request carries webhook-id (the event id, the
// same on every retry), webhook-timestamp (Unix seconds of the attempt)
// and webhook-signature: "v1,<base64 HMAC-SHA256 of id.timestamp.body>"
// per valid secret, space-separated. After Keys.Rotate the previous
// secret signs too, for RotationOverlap (24 h) after the rotation; only
// two secrets are ever valid. The HMAC is the reference library's
// (github.com/standard-webhooks/standard-webhooks/libraries/go): it signs
// with one key, so Keys.Sign calls it once per valid secret and joins the
// results. The tests verify every delivery with the same library, as a
// receiver would.
//
// A Secret prints, logs and marshals as "whsec_[redacted]"; only Reveal
// gives the value, for the one answer that shows it and for the store.
// Endpoint and Keys log without their secrets, and an endpoint's URL is
// logged without its query or credentials.
//
// # Body: one event per request
//
// The body is the event exactly as the feed shows it, which the caller
// passes in Event.Body. There is no batching: the design fixes
// webhook-id as the event id, which names one event, and Standard
// Webhooks assumes one message per id. A receiver thus always gets one
// JSON object and deduplicates on webhook-id. The cost is one round trip
// per event and endpoint, which ordered delivery pays anyway. Note that a
// replay re-sends events with their old webhook-ids: a receiver that
// remembers ids will skip them.
//
// # Order and durability
//
// Runner.Run sends the events after the cursor one at a time; the next
// goes out only after a 2xx for the previous one and after SaveState
// stored it. Events of types the endpoint did not select move the cursor
// without a request (saved before the next request, and at the end of a
// run). A crash between a 2xx and its save re-sends that one event, with
// the same webhook-id; nothing else is sent twice or skipped. A 2xx is
// saved even when ctx ends meanwhile; a shutdown mid-request counts no
// failed attempt.
//
// # Retries
//
// Policy.Advance is a pure state machine over State (status, cursor,
// failing since, attempts, next attempt at). A 2xx moves the cursor and
// makes the endpoint active. Any other answer, a timeout or a connection
// error makes it failing, with a delay of 1 s doubling to at most 1 h,
// less up to 20 % jitter, at least the receiver's Retry-After (within the
// cap). Three days after the head event first failed the endpoint is
// disabled; 410 Gone disables it at once. Enabling resumes from the
// cursor: the feed keeps every event missed meanwhile.
//
// # Safety
//
// ValidateURL accepts https://, and http:// only to loopback hosts
// (127.0.0.0/8, ::1, localhost). The address guard, a net.Dialer Control
// hook, judges the address each connection is made to, after name
// resolution, so a name that resolves or re-resolves (DNS rebinding) to a
// refused address is caught. It refuses loopback, private (RFC 1918,
// fc00::/7), link-local, CGNAT and a few special ranges unless
// Options.AllowPrivateNetworks (webhooks.allow_private_networks) is set;
// cloud metadata (169.254.169.254, fd00:ec2::254, ...), unspecified,
// multicast and reserved addresses are refused even then, since a
// metadata answer in the delivery log would hand the host's credentials
// to the endpoint's owner. IPv4-mapped, NAT64 and 6to4 addresses are
// judged by the IPv4 address inside.
//
// The two rules meet at loopback http:// URLs: the URL rule allows them,
// the address rule refuses loopback. ValidateURL applies the address rule
// to what the URL shows (a literal address, or localhost), so without
// private networks allowed a loopback URL is refused when the endpoint is
// created, with a message naming the setting, instead of being accepted
// and failing every delivery. With them allowed (tests, local receivers),
// loopback http:// works. Names are left to the guard.
//
// The client uses no proxy (the guard must see the receiver's address),
// follows no redirect (a 3xx is a failed attempt), keeps at most 4 KiB of
// a response body (Options.MaxResponseBytes) and bounds each attempt to
// 10 s (Options.Timeout).
//
// # Tests
//
// Over real HTTP, against httptest receivers and an in-memory
// EventSource/StateSink: every delivery verified with the reference
// library, also through a rotation and after the old secret expired; the
// specification's signing example; order through a receiver that fails
// the 3rd event 4 times (500, 503, 429 with Retry-After, a dropped
// connection), with the stored cursor checked at each request; two
// endpoints, one failing; 410; the 3-day give-up (84 attempts without
// jitter); type filters; an admin replay during a request; a failed
// save; a shutdown; the address guard on literal addresses, on a DNS name
// that resolves to loopback (through a fake DNS server) and on metadata
// addresses; redirects; timeouts; body truncation; secrets absent from
// fmt, slog and JSON output, errors and logs. A fake clock replaces
// sleeping.
package webhooks
