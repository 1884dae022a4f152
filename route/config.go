package route

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// MaxFileBytes bounds a config file.
const MaxFileBytes = 1 << 20

// Config is a parsed config file: the route table and the serve settings.
type Config struct {
	Routes *Table
	// Serve holds `keygate serve` settings by flag name ("upstream",
	// "upstream-timeout"; underscores are read as dashes), as strings for
	// the flag to parse. Flags and KEYGATE_* variables win over them.
	Serve map[string]Setting
}

// Setting is one serve setting and the line it is on.
type Setting struct {
	Value string
	Line  int
}

type fileRule struct {
	Name   string   `yaml:"name"`
	Method methods  `yaml:"method"`
	Path   string   `yaml:"path"`
	Scopes []string `yaml:"scopes"`
	Public bool     `yaml:"public"`
}

type methods []string

// UnmarshalYAML takes one method or a list of them.
func (m *methods) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*m = []string{n.Value}
		return nil
	case yaml.SequenceNode:
		var l []string
		if err := n.Decode(&l); err != nil {
			return err
		}
		*m = l
		return nil
	}
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: method must be a method name or a list of them", n.Line)}}
}

// Load reads and parses the config file at path.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &Error{File: path, Msg: err.Error()}
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, &Error{File: path, Msg: err.Error()}
	}
	return Parse(path, data)
}

// Parse parses a config file's contents; name is the file's name for
// messages. Every error is an *Error naming the line and the reason.
func Parse(name string, data []byte) (*Config, error) {
	c, err := parse(data)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.File = name
			return nil, e
		}
		return nil, &Error{File: name, Msg: err.Error()}
	}
	return c, nil
}

var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// yamlError turns yaml.v3's errors ("yaml: line 3: …", or a TypeError's
// list of "line 3: …") into an *Error with the first line and reason.
func yamlError(err error) error {
	var te *yaml.TypeError
	msg := err.Error()
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{Line: line, Msg: m[2]}
	}
	return &Error{Msg: strings.TrimPrefix(msg, "yaml: ")}
}

func parse(data []byte) (*Config, error) {
	if len(data) > MaxFileBytes {
		return nil, &Error{Msg: fmt.Sprintf("the file is larger than %d bytes", MaxFileBytes)}
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) { // an empty file: no rules, the default
			t, _ := NewTable(nil, DefaultRule())
			return &Config{Routes: t, Serve: map[string]Setting{}}, nil
		}
		return nil, yamlError(err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, &Error{Line: extra.Line, Msg: "the file holds more than one YAML document"}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		return nil, &Error{Line: root.Line, Msg: "the file must be a mapping with routes, default and serve"}
	}
	c := &Config{Serve: map[string]Setting{}}
	var rules []Rule
	def := DefaultRule()
	seen := map[string]bool{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if seen[k.Value] {
			return nil, &Error{Line: k.Line, Msg: fmt.Sprintf("%q appears twice", k.Value)}
		}
		seen[k.Value] = true
		switch k.Value {
		case "routes":
			if v.Kind != yaml.SequenceNode {
				if v.Tag == "!!null" {
					continue
				}
				return nil, &Error{Line: v.Line, Msg: "routes must be a list of rules"}
			}
			for _, n := range v.Content {
				r, err := decodeRule(n)
				if err != nil {
					return nil, err
				}
				rules = append(rules, r)
			}
		case "default":
			if v.Tag == "!!null" {
				continue
			}
			r, err := decodeRule(v)
			if err != nil {
				return nil, err
			}
			def = r
		case "serve":
			if v.Tag == "!!null" {
				continue
			}
			if v.Kind != yaml.MappingNode {
				return nil, &Error{Line: v.Line, Msg: "serve must be a mapping of flag names to values"}
			}
			for j := 0; j+1 < len(v.Content); j += 2 {
				fk, fv := v.Content[j], v.Content[j+1]
				if fv.Kind != yaml.ScalarNode {
					return nil, &Error{Line: fv.Line, Msg: fmt.Sprintf("serve.%s must be a single value", fk.Value)}
				}
				c.Serve[strings.ReplaceAll(fk.Value, "_", "-")] = Setting{Value: fv.Value, Line: fv.Line}
			}
		default:
			return nil, &Error{Line: k.Line, Msg: fmt.Sprintf("unknown section %q: use routes, default or serve", k.Value)}
		}
	}
	t, err := NewTable(rules, def)
	if err != nil {
		return nil, err
	}
	c.Routes = t
	return c, nil
}

func decodeRule(n *yaml.Node) (Rule, error) {
	if n.Kind != yaml.MappingNode {
		return Rule{}, &Error{Line: n.Line, Msg: "a rule must be a mapping with path, and method, scopes, public or name"}
	}
	// Decode checks types; unknown fields are found here, with their line.
	for i := 0; i+1 < len(n.Content); i += 2 {
		switch k := n.Content[i]; k.Value {
		case "name", "method", "path", "scopes", "public":
		default:
			return Rule{}, &Error{Line: k.Line, Msg: fmt.Sprintf("unknown field %q in a rule: use name, method, path, scopes or public", k.Value)}
		}
	}
	var fr fileRule
	if err := n.Decode(&fr); err != nil {
		return Rule{}, yamlError(err)
	}
	return Rule{Name: fr.Name, Methods: fr.Method, Path: fr.Path, Scopes: fr.Scopes, Public: fr.Public, Line: n.Line}, nil
}
