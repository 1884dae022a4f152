package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/api"
)

// DefaultURL is where the admin commands look for a server when neither
// --url nor KEYGATE_URL says.
const DefaultURL = "http://127.0.0.1:8080"

// cliOpts are the options every admin command takes.
type cliOpts struct {
	url     string // --url; KEYGATE_URL when empty
	rootKey string // --root-key; KEYGATE_ROOT_KEY when empty
	json    bool

	lookupEnv func(string) (string, bool)
	shownURL  string // the server URL without credentials, for messages
}

// adminFlags declares the options of an admin command on fs. Their
// defaults are empty: the environment is read when the command runs, so
// that help never shows the root key.
func (m *Main) adminFlags(fs *flag.FlagSet) *cliOpts {
	o := &cliOpts{lookupEnv: m.LookupEnv}
	fs.StringVar(&o.url, "url", "", "keygate server `URL` (default: KEYGATE_URL, else "+DefaultURL+")")
	fs.StringVar(&o.rootKey, "root-key", "", "root `KEY` (default: KEYGATE_ROOT_KEY; prefer the environment: flags show in ps)")
	fs.BoolVar(&o.json, "json", false, "print JSON for scripts instead of a table")
	return o
}

// client returns an API client for the server and root key the flags or
// the environment name.
func (o *cliOpts) client() (*api.Client, error) {
	u := o.url
	if u == "" {
		u, _ = o.lookupEnv("KEYGATE_URL")
	}
	if u == "" {
		u = DefaultURL
	}
	o.shownURL = u
	if pu, err := url.Parse(u); err == nil {
		o.shownURL = pu.Redacted()
	}
	key := o.rootKey
	if key == "" {
		key, _ = o.lookupEnv("KEYGATE_ROOT_KEY")
	}
	if key = strings.TrimSpace(key); key == "" {
		return nil, errors.New("KEYGATE_ROOT_KEY is not set: export the root key that `keygate serve` printed on its first start (or the contents of its --root-key-file)")
	}
	return api.NewClient(u, key), nil
}

// explain turns an API error into one line a person can act on.
func (o *cliOpts) explain(err error) error {
	var e *api.Error
	if !errors.As(err, &e) {
		if strings.Contains(err.Error(), "connection refused") {
			return fmt.Errorf("cannot reach keygate at %s: connection refused; is `keygate serve` running there? (set KEYGATE_URL)", o.shownURL)
		}
		return err
	}
	switch e.Problem.Code {
	case keygate.EUNAUTHORIZED:
		return fmt.Errorf("the server at %s refused the root key in KEYGATE_ROOT_KEY: it is unknown, revoked or mistyped", o.shownURL)
	case keygate.EFORBIDDEN:
		return fmt.Errorf("not allowed: %s", e.Problem.Detail)
	}
	return errors.New(e.Problem.Detail)
}

// call is every admin command's last step: it calls the API with the
// client the options name, turns a failure into an explanation, and prints
// the answer as JSON with --json or for people with show.
func call[T any](ctx context.Context, o *cliOpts, w io.Writer, do func(context.Context, *api.Client) (T, error), show func(io.Writer, T) error) error {
	c, err := o.client()
	if err != nil {
		return err
	}
	v, err := do(ctx, c)
	if err != nil {
		return o.explain(err)
	}
	if o.json {
		return printJSON(w, v)
	}
	return show(w, v)
}

// callList is call for a list: the page as a table for people, then, on
// errOut, how to ask for the next one, which stays out of a pipe of the
// table.
func callList[T any](ctx context.Context, o *cliOpts, w, errOut io.Writer, do func(context.Context, *api.Client) (*api.List[T], error), tbl func(io.Writer, []T) error) error {
	return call(ctx, o, w, do, func(w io.Writer, l *api.List[T]) error {
		if err := tbl(w, l.Data); err != nil {
			return err
		}
		return nextPage(errOut, l.NextCursor)
	})
}

// callAll is call for a list the API answers whole, without pages: with
// --json it prints {"data": […]}, as a page would be.
func callAll[T any](ctx context.Context, o *cliOpts, w io.Writer, do func(context.Context, *api.Client) ([]T, error), tbl func(io.Writer, []T) error) error {
	return call(ctx, o, w, func(ctx context.Context, c *api.Client) (api.List[T], error) {
		all, err := do(ctx, c)
		if all == nil {
			all = []T{}
		}
		return api.List[T]{Data: all}, err
	}, func(w io.Writer, l api.List[T]) error {
		return tbl(w, l.Data)
	})
}

// setQuery sets the non-empty values of key, value pairs.
func setQuery(q url.Values, kv ...string) {
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			q.Set(kv[i], kv[i+1])
		}
	}
}

// oneID checks that exactly one positional argument was given and that it
// has the ID prefix; it never echoes a wrong argument, which may be a
// plaintext key pasted by mistake.
func oneID(cmd, prefix, what string, pos []string) (string, error) {
	if len(pos) != 1 {
		return "", fmt.Errorf("%w: %s needs one %s ID (%s…)", errUsage, cmd, what, prefix)
	}
	id := strings.TrimSpace(pos[0])
	if !strings.HasPrefix(id, prefix) {
		article := "a"
		if strings.ContainsRune("aeiou", rune(what[0])) {
			article = "an"
		}
		return "", fmt.Errorf("%w: %s takes %s %s ID, which starts with %q; the argument given does not (never pass a plaintext key here)", errUsage, cmd, article, what, prefix)
	}
	return id, nil
}

// looksLikeKey reports whether s is shaped like a plaintext key
// (prefix_env_secret) rather than an ID.
func looksLikeKey(s string) bool {
	return strings.Contains(s, "_live_") || strings.Contains(s, "_test_")
}
