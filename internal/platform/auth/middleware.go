package auth

import (
	"log/slog"
	"net/http"

	"github.com/microshop/microshop/internal/platform/problem"
)

// Challenge is the WWW-Authenticate value sent with every 401.
const Challenge = `Bearer realm="microshop"`

// Authenticator verifies the credentials a request carries and puts the
// principal in its context. A request without credentials goes on as
// anonymous (handlers decide whether that is enough); a request with bad
// credentials is refused with 401 at once.
type Authenticator struct {
	Users    *Verifier // end users' access tokens
	Services *Verifier // other services' tokens; nil when this service has no internal endpoints
	Log      *slog.Logger
}

// Middleware wraps next with authentication.
func (a *Authenticator) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		var p Principal
		token, present, err := BearerToken(r.Header.Get("Authorization"))
		if err == nil && present {
			p, err = a.Users.VerifyUser(ctx, token)
		}
		if err == nil {
			if svc := r.Header.Get(ServiceHeader); svc != "" {
				if a.Services == nil {
					err = invalid(nil)
				} else {
					p.Service, err = a.Services.VerifyService(ctx, svc)
				}
			}
		}
		if err != nil {
			a.Log.WarnContext(ctx, "rejected credentials", "err", err) // the cause names the failed check, never the token
			Unauthorized(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(WithPrincipal(ctx, p)))
	})
}

// Unauthorized writes err as a problem; a 401 gets the Bearer challenge (RFC
// 6750). err is a 503 instead when the keys to verify with were unreachable.
func Unauthorized(w http.ResponseWriter, r *http.Request, err error) {
	p := problem.From(err)
	if p.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", Challenge+`, error="invalid_token"`)
	}
	problem.Write(w, r, p)
}
