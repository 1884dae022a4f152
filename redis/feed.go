package redis

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/engine"
)

var _ engine.Feed = (*Feed)(nil)

// feedBuffer is how many changes may wait to be published; past it they
// are dropped (and counted), and the other instances are told to catch up
// from the store (engine.ChangeResync).
const feedBuffer = 4096

// floodAt is how many changes waiting to be published, or published
// within one floodWindow, make a flood (a bulk import): the publisher
// replaces the rest with one engine.ChangeResync. Counting by time as well
// as by queue makes a flood a flood however fast the publisher drains the
// queue.
const (
	floodAt     = 256
	floodWindow = 100 * time.Millisecond
)

// message is what the feed publishes: which record changed, and which
// instance changed it. Records themselves stay in the store: receivers
// read them from there, so nothing secret passes through Redis.
type message struct {
	Origin string             `json:"o"`
	Kind   keygate.ChangeKind `json:"k"`
	ID     string             `json:"id"`
}

// FeedOptions configure a Feed.
type FeedOptions struct {
	// Prefix starts the channel name (Prefix + "changes"); empty means
	// DefaultPrefix. Every instance of one installation must use the same.
	Prefix string
	Logger *slog.Logger
}

// Feed is an engine.Feed on Redis pub/sub: Publish sends each change this
// instance made to one channel, and Subscribe applies those of every
// other instance. Pub/sub delivers in well under a millisecond, but drops
// what is published while a subscriber is disconnected: the engine syncs
// from the store each time Subscribe (re)subscribes, which it reports.
type Feed struct {
	client  *Client
	channel string
	origin  string
	log     *slog.Logger
	pub     chan keygate.Change

	published, dropped, received atomic.Uint64
	publishFailures              atomic.Uint64
	// lost is set when Publish dropped a change: the publisher then
	// tells the other instances to resync.
	lost atomic.Bool
	// window is the floodWindow (Unix time / floodWindow) that inWindow
	// counts the changes of.
	window, inWindow atomic.Int64
}

// NewFeed returns a Feed on client. Changes are published while Subscribe
// runs.
func NewFeed(client *Client, o FeedOptions) *Feed {
	f := &Feed{client: client, channel: o.Prefix + "changes", origin: rand.Text()[:16], log: o.Logger,
		pub: make(chan keygate.Change, feedBuffer)}
	if o.Prefix == "" {
		f.channel = DefaultPrefix + "changes"
	}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	return f
}

// Published, Dropped and Received count changes sent, changes dropped
// (the buffer was full) and changes received from other instances.
func (f *Feed) Published() uint64 { return f.published.Load() }
func (f *Feed) Dropped() uint64   { return f.dropped.Load() }
func (f *Feed) Received() uint64  { return f.received.Load() }

// Publish queues c for the other instances. It never blocks: when the
// queue is full, c is dropped and counted; past floodAt changes in one
// floodWindow, c is dropped for the resync that follows the flood.
func (f *Feed) Publish(c keygate.Change) {
	w := time.Now().UnixNano() / int64(floodWindow)
	if old := f.window.Load(); old != w && f.window.CompareAndSwap(old, w) {
		f.inWindow.Store(0)
	}
	if f.inWindow.Add(1) > floodAt {
		f.lost.Store(true)
		return
	}
	select {
	case f.pub <- c:
	default:
		f.dropped.Add(1)
		f.lost.Store(true)
	}
}

// Subscribe publishes queued changes and applies those of other instances
// until ctx is done. It reconnects by itself, calling up(false) when the
// subscription is lost and up(true) each time it is made.
func (f *Feed) Subscribe(ctx context.Context, apply func(keygate.Change), up func(bool)) error {
	pubDone := make(chan struct{})
	go func() { f.publishLoop(ctx); close(pubDone) }()
	defer func() { <-pubDone }()

	ps := f.client.Subscribe(ctx, f.channel)
	defer ps.Close()
	subscribed := false
	lost := func(err error) {
		if subscribed {
			subscribed = false
			up(false)
			f.log.Error("change feed: lost the Redis subscription; catching up from the store until it is back", "err", err)
		}
	}
	for {
		msg, err := ps.ReceiveTimeout(ctx, 2*time.Second)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// Quiet channel: check that the connection still carries.
				if err := ps.Ping(ctx); err == nil {
					continue
				}
			}
			lost(err)
			select { // go-redis reconnects on the next receive
			case <-ctx.Done():
				return nil
			case <-time.After(250 * time.Millisecond):
			}
			continue
		}
		switch m := msg.(type) {
		case *goredis.Subscription:
			if m.Kind == "subscribe" {
				if !subscribed {
					f.log.Info("change feed: subscribed", "channel", f.channel)
				}
				subscribed = true
				up(true)
			}
		case *goredis.Message:
			var msg message
			if err := json.Unmarshal([]byte(m.Payload), &msg); err != nil || msg.ID == "" {
				f.log.Warn("change feed: ignoring a message that is not a keygate change", "channel", m.Channel)
				continue
			}
			if msg.Origin == f.origin {
				continue
			}
			f.received.Add(1)
			apply(keygate.Change{Kind: msg.Kind, ID: msg.ID})
		}
	}
}

// publishLoop publishes queued changes, a pipeline of those waiting at
// once, until ctx is done. A change that cannot be published is dropped:
// the other instances catch up with their next sync.
func (f *Feed) publishLoop(ctx context.Context) {
	failing := false
	batch := make([]keygate.Change, 0, 64)
	for {
		select {
		case <-ctx.Done():
			return
		case c := <-f.pub:
			batch = append(batch[:0], c)
		}
	more:
		for len(batch) < cap(batch) {
			select {
			case c := <-f.pub:
				batch = append(batch, c)
			default:
				break more
			}
		}
		if len(f.pub) >= floodAt {
			// A flood (a bulk import): one resync tells the others to read
			// it all from the store in one query, rather than one per
			// record.
			for len(f.pub) > 0 {
				<-f.pub
			}
			batch = batch[:0]
			f.lost.Store(true)
		}
		pipe := f.client.Pipeline()
		for _, c := range batch {
			b, _ := json.Marshal(message{Origin: f.origin, Kind: c.Kind, ID: c.ID})
			pipe.Publish(ctx, f.channel, b)
		}
		if len(f.pub) == 0 && f.lost.Swap(false) {
			// Changes were dropped: the others catch up from the store.
			b, _ := json.Marshal(message{Origin: f.origin, Kind: engine.ChangeResync, ID: "*"})
			pipe.Publish(ctx, f.channel, b)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			f.publishFailures.Add(uint64(len(batch)))
			f.lost.Store(true)
			if !failing && ctx.Err() == nil {
				f.log.Error("change feed: publishing to Redis failed; other instances catch up from the store", "err", err, "changes", len(batch))
			}
			failing = true
			continue
		}
		if failing {
			f.log.Info("change feed: publishing again")
			failing = false
		}
		f.published.Add(uint64(len(batch)))
	}
}
