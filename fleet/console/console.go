// Package console is fleet-server's web console: one HTML page, a script
// and a stylesheet embedded in the binary (no CDN, no external libraries)
// that poll the /api/v1 endpoints and draw devices, models, rollouts with
// their gates and actions, and telemetry charts as inline SVG. The page
// starts with a sign-in form; the operator's API token is kept in
// sessionStorage and sent as "Authorization: Bearer" (never a cookie).
package console

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed assets
var assets embed.FS

// Handler serves the console at "/" (index.html) and its assets.
func Handler() http.Handler {
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	fsrv := http.FileServer(http.FS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; script-src 'self'; img-src 'self' data:")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		fsrv.ServeHTTP(w, r)
	})
}
