package api

// Endpoint is a route of the table, for the tests of package api_test.
type Endpoint struct{ Method, Path string }

// Endpoints lists the route table.
func (s *Server) Endpoints() []Endpoint {
	var out []Endpoint
	for _, rt := range s.routes() {
		out = append(out, Endpoint{rt.method, rt.path})
	}
	return out
}
