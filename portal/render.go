package portal

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/problem"
)

// page is what every template gets.
type page struct {
	Title  string
	Nav    string // the navigation entry to mark as current
	Viewer *viewer
	// Errors holds a message per form field ("" for the form as a whole);
	// Form the values to show again.
	Errors map[string]string
	Form   map[string]string
	Notice string
	Data   any
}

// Err returns the error of a field, for templates.
func (p *page) Err(field string) string { return p.Errors[field] }

// Val returns the value to show in a field, for templates.
func (p *page) Val(field string) string { return p.Form[field] }

var funcs = template.FuncMap{
	"date": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
	"datep": func(t *time.Time) string {
		if t == nil {
			return "never"
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
	"list": func(s ...string) []string { return s },
	"num":  formatInt,
	"ms":   formatMs,
}

// formatInt writes n with thin groups of three digits: 100,000.
func formatInt(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// parsePages parses each page template together with the layout.
func parsePages() map[string]*template.Template {
	layout := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html"))
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		panic(err)
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		name := path.Base(n)
		if name == "layout.html" {
			continue
		}
		pages[strings.TrimSuffix(name, ".html")] = template.Must(template.Must(layout.Clone()).ParseFS(templateFS, n))
	}
	return pages
}

// render writes the named page with status. The page is rendered into a
// buffer first, so that a template error becomes a clean 500.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, p *page) error {
	t := s.pages[name]
	if t == nil {
		return fmt.Errorf("portal: no template %q", name)
	}
	if p.Viewer == nil {
		p.Viewer = viewerFrom(r.Context())
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout.html", p); err != nil {
		return fmt.Errorf("portal: render %s: %w", name, err)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, err := buf.WriteTo(w)
	return err
}

// renderError writes an error page with a message that is safe to show.
func (s *Server) renderError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	p := &page{Title: http.StatusText(status), Data: msg}
	if err := s.render(w, r, status, "error", p); err != nil {
		s.log().Error("portal: rendering the error page failed", "err", err)
		http.Error(w, msg, status)
	}
}

// formFailed renders a form page again with the error next to its field
// and the status the error's code calls for.
func (s *Server) formFailed(w http.ResponseWriter, r *http.Request, name string, p *page, field string, err error) error {
	code := keygate.ErrorCode(err)
	if code == keygate.EINTERNAL || code == keygate.EUNAVAILABLE {
		return err
	}
	if p.Errors == nil {
		p.Errors = map[string]string{}
	}
	p.Errors[field] = keygate.ErrorMessage(err)
	return s.render(w, r, problem.Status(code), name, p)
}
