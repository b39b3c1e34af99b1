package usersdb_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/microshop/microshop/internal/platform/fault"
	"github.com/microshop/microshop/internal/platform/logging"
	"github.com/microshop/microshop/internal/platform/sqldb"
	"github.com/microshop/microshop/internal/platform/sqldb/sqldbtest"
	"github.com/microshop/microshop/internal/users"
	"github.com/microshop/microshop/internal/users/usersdb"
)

// TestStore runs one suite against SQLite and PostgreSQL.
func TestStore(t *testing.T) {
	sqldbtest.ForEach(t, "users", usersdb.Migrations(), func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		svc := users.NewService(usersdb.New(db), logging.Discard())

		var created []users.User
		for _, in := range []users.NewUser{
			{Name: "Ada", Email: "ada@example.com"},
			{Name: "Grace", Email: "grace@example.com"},
			{Name: "Edsger", Email: "edsger@example.com"},
		} {
			u, err := svc.Create(ctx, in)
			if err != nil {
				t.Fatalf("Create(%+v): %v", in, err)
			}
			if u.Role != users.RoleCustomer || u.CreatedAt.IsZero() || u.CreatedAt.Location() != time.UTC {
				t.Errorf("Create(%+v) = %+v", in, u)
			}
			created = append(created, u)
			time.Sleep(2 * time.Millisecond) // distinct UUIDv7 timestamps keep creation order
		}

		got, err := svc.User(ctx, created[1].ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(created[1], got); diff != "" {
			t.Errorf("User() mismatch (-want +got):\n%s", diff)
		}

		tests := []struct {
			name string
			in   users.NewUser
			want fault.Kind
			code string
		}{
			{"duplicate email", users.NewUser{Name: "Other", Email: "ada@example.com"}, fault.Conflict, "email-taken"},
			{"duplicate email in other case", users.NewUser{Name: "Other", Email: "ADA@EXAMPLE.COM"}, fault.Conflict, "email-taken"},
			{"invalid email", users.NewUser{Name: "Other", Email: "nope"}, fault.Invalid, ""},
		}
		for _, tt := range tests {
			_, err := svc.Create(ctx, tt.in)
			if fault.KindOf(err) != tt.want || fault.CodeOf(err) != tt.code {
				t.Errorf("%s: err = %v (kind %v, code %q), want kind %v code %q", tt.name, err, fault.KindOf(err), fault.CodeOf(err), tt.want, tt.code)
			}
		}
		if _, err := svc.User(ctx, "0190f000-0000-7000-8000-000000000000"); fault.KindOf(err) != fault.NotFound {
			t.Errorf("unknown user: err = %v, want not found", err)
		}

		// Pages of two: the first has a cursor, the second ends the list.
		p1, err := svc.List(ctx, "", 2)
		if err != nil {
			t.Fatal(err)
		}
		p2, err := svc.List(ctx, p1.NextCursor, 2)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, u := range append(p1.Items, p2.Items...) {
			ids = append(ids, u.ID)
		}
		want := []string{created[0].ID, created[1].ID, created[2].ID}
		if diff := cmp.Diff(want, ids); diff != "" || p1.NextCursor == "" || p2.NextCursor != "" {
			t.Errorf("pages: ids diff %s, cursors %q, %q", diff, p1.NextCursor, p2.NextCursor)
		}
		if _, err := svc.List(ctx, "!!not-a-cursor", 2); fault.KindOf(err) != fault.Invalid {
			t.Errorf("bad cursor: err = %v, want invalid", err)
		}
	})
}
