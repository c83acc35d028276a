package vpn

import (
	"encoding/json"
	"net/http"
)

// Routes mounts GET /v1/vpn (the Status as JSON) on the node admin mux.
func (m *Manager) Routes(mux *http.ServeMux) {
	mux.Handle("GET /v1/vpn", m)
}

func (m *Manager) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(m.Status())
}
