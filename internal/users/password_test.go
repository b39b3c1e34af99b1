package users_test

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/microshop/microshop/internal/platform/fault"
	"github.com/microshop/microshop/internal/users"
)

// cheap are argon2id parameters that keep tests fast.
var cheap = users.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func TestHasherRoundTrip(t *testing.T) {
	ctx := context.Background()
	h := users.NewHasher(users.DefaultParams)
	const pw = "correct horse battery staple"
	enc, err := h.Hash(ctx, pw)
	if err != nil {
		t.Fatal(err)
	}
	phc := regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)
	if !phc.MatchString(enc) {
		t.Errorf("Hash() = %q, want the PHC form with OWASP parameters", enc)
	}
	if strings.Contains(enc, pw) {
		t.Errorf("Hash() contains the password")
	}
	again, _ := h.Hash(ctx, pw)
	if again == enc {
		t.Errorf("two hashes of one password are equal: the salt is not random")
	}
	tests := []struct {
		name     string
		password string
		want     bool
	}{
		{"right password", pw, true},
		{"wrong password", "correct horse battery stapler", false},
		{"empty password", "", false},
		{"case differs", strings.ToUpper(pw), false},
	}
	for _, tt := range tests {
		got, err := h.Verify(ctx, enc, tt.password)
		if err != nil || got != tt.want {
			t.Errorf("%s: Verify() = %v, %v; want %v, nil", tt.name, got, err, tt.want)
		}
	}
	if got, want := h.Verifications(), int64(len(tests)); got != want {
		t.Errorf("Verifications() = %d, want %d", got, want)
	}
	if h.NeedsRehash(enc) {
		t.Errorf("NeedsRehash(current hash) = true")
	}
}

// TestHasherVerifiesOtherParameters: a hash is verified with the parameters it
// names, and one made with other parameters needs rehashing.
func TestHasherVerifiesOtherParameters(t *testing.T) {
	ctx := context.Background()
	old := users.NewHasher(cheap)
	enc, err := old.Hash(ctx, "an old password")
	if err != nil {
		t.Fatal(err)
	}
	cur := users.NewHasher(users.Params{Memory: 128, Time: 2, Threads: 2, SaltLen: 16, KeyLen: 32})
	if ok, err := cur.Verify(ctx, enc, "an old password"); !ok || err != nil {
		t.Errorf("Verify(hash with other parameters) = %v, %v; want true", ok, err)
	}
	if !cur.NeedsRehash(enc) {
		t.Errorf("NeedsRehash(hash with other parameters) = false")
	}
}

func TestHasherRejectsBadEncodings(t *testing.T) {
	ctx := context.Background()
	h := users.NewHasher(cheap)
	good, err := h.Hash(ctx, "a fine password")
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, "$") // "", argon2id, v=19, params, salt, key
	with := func(i int, v string) string {
		p := append([]string(nil), parts...)
		p[i] = v
		return strings.Join(p, "$")
	}
	tests := []struct {
		name    string
		encoded string
	}{
		{"empty", ""},
		{"garbage", "not a hash"},
		{"bcrypt", "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW"},
		{"argon2i", with(1, "argon2i")},
		{"argon2d", with(1, "argon2d")},
		{"version 16", with(2, "v=16")},
		{"no version", strings.Replace(good, "$v=19", "", 1)},
		{"missing parameter", with(3, "m=64,t=1")},
		{"extra parameter", with(3, "m=64,t=1,p=1,x=2")},
		{"parameters out of order", with(3, "t=1,m=64,p=1")},
		{"leading zero", with(3, "m=064,t=1,p=1")},
		{"plus sign", with(3, "m=+64,t=1,p=1")},
		{"negative", with(3, "m=-64,t=1,p=1")},
		{"not a number", with(3, "m=x,t=1,p=1")},
		{"huge memory", with(3, "m=4194304,t=1,p=1")},
		{"memory overflow", with(3, "m=99999999999,t=1,p=1")},
		{"memory below 8p", with(3, "m=8,t=1,p=2")},
		{"zero time", with(3, "m=64,t=0,p=1")},
		{"huge time", with(3, "m=64,t=1000,p=1")},
		{"zero threads", with(3, "m=64,t=1,p=0")},
		{"threads over 255", with(3, "m=4096,t=1,p=256")},
		{"salt not base64", with(4, "!!!!!!!!!!!!!!!!!!!!!!")},
		{"salt padded", with(4, parts[4]+"==")},
		{"salt url alphabet", with(4, strings.NewReplacer("+", "-", "/", "_").Replace(parts[4])+"-_")},
		{"salt too short", with(4, "AAAA")},
		{"key too short", with(5, "AAAAAAAAAAAAAAAAAAAA")}, // 15 bytes
		{"key empty", with(5, "")},
		{"trailing dollar", good + "$"},
		{"too long", good + strings.Repeat("A", 600)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := h.Verify(ctx, tt.encoded, "a fine password")
			if ok || !errors.Is(err, users.ErrMalformedHash) {
				t.Errorf("Verify(%q) = %v, %v; want false, ErrMalformedHash", tt.encoded, ok, err)
			}
			if !h.NeedsRehash(tt.encoded) {
				t.Errorf("NeedsRehash(%q) = false", tt.encoded)
			}
		})
	}
	if n := h.Verifications(); n != 0 {
		t.Errorf("Verifications() = %d after only malformed hashes, want 0 (nothing to compute)", n)
	}
	// A tampered key or salt is well-formed but does not verify.
	flip := func(s string) string {
		b := []byte(s)
		if b[3] == 'A' {
			b[3] = 'B'
		} else {
			b[3] = 'A'
		}
		return string(b)
	}
	for _, enc := range []string{with(4, flip(parts[4])), with(5, flip(parts[5]))} {
		if ok, err := h.Verify(ctx, enc, "a fine password"); ok || err != nil {
			t.Errorf("Verify(tampered %q) = %v, %v; want false, nil", enc, ok, err)
		}
	}
}

func TestNewHasherRejectsBadParams(t *testing.T) {
	tests := []struct {
		name string
		p    users.Params
	}{
		{"zero", users.Params{}},
		{"short salt", users.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 4, KeyLen: 32}},
		{"short key", users.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 8}},
		{"too much memory", users.Params{Memory: 1 << 30, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}},
	}
	for _, tt := range tests {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: NewHasher(%+v) did not panic", tt.name, tt.p)
				}
			}()
			users.NewHasher(tt.p)
		}()
	}
}

func TestValidPassword(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr bool
	}{
		{"12 characters", strings.Repeat("a", 12), false},
		{"11 characters", strings.Repeat("a", 11), true},
		{"empty", "", true},
		{"128 characters", strings.Repeat("a", 128), false},
		{"129 characters", strings.Repeat("a", 129), true},
		{"12 multi-byte characters", strings.Repeat("é", 12), false},
		{"128 two-byte characters (256 bytes)", strings.Repeat("é", 128), false},
		{"86 three-byte characters (258 bytes)", strings.Repeat("€", 86), true},
		{"spaces count", "            ", false},
		{"invalid UTF-8", strings.Repeat("\xff", 20), true},
	}
	for _, tt := range tests {
		err := users.ValidPassword(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: ValidPassword() = %v, want error %v", tt.name, err, tt.wantErr)
		}
		if err == nil {
			continue
		}
		if fault.KindOf(err) != fault.Invalid {
			t.Errorf("%s: kind %v, want invalid", tt.name, fault.KindOf(err))
		}
		if tt.in != "" && strings.Contains(err.Error(), tt.in) {
			t.Errorf("%s: the error echoes the password: %v", tt.name, err)
		}
		var fe *fault.Error
		if errors.As(err, &fe) {
			if diff := cmp.Diff([]fault.FieldError{{Location: "body.password", Message: fe.Msg}}, fe.Fields); diff != "" {
				t.Errorf("%s: fields (-want +got):\n%s", tt.name, diff)
			}
		}
	}
}

// TestHasherReleasesMemory: after hashes that use at least a MiB, the Hasher
// returns their memory to the operating system once no hash is running; after
// cheaper ones it does not bother.
func TestHasherReleasesMemory(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name      string
		memory    uint32 // KiB
		scheduled bool
	}{
		{"cheap hashes", 64, false},
		{"just under a MiB", 1023, false},
		{"a MiB", 1024, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			releases := make(chan struct{}, 16)
			p := cheap
			p.Memory = tt.memory
			h := users.NewHasherReleasing(p, 0, func() { releases <- struct{}{} })
			if !tt.scheduled {
				if _, err := h.Hash(ctx, "correct horse battery staple"); err != nil {
					t.Fatal(err)
				}
				if h.ReleaseScheduled() {
					t.Error("a release was scheduled")
				}
				return
			}
			<-releases // after the dummy hash NewHasher makes
			enc, err := h.Hash(ctx, "correct horse battery staple")
			if err != nil {
				t.Fatal(err)
			}
			<-releases
			if ok, err := h.Verify(ctx, enc, "correct horse battery staple"); !ok || err != nil {
				t.Fatalf("Verify = %v, %v", ok, err)
			}
			<-releases
		})
	}
}

// TestHasherKeepsMemoryWhileHashing: a release due while a hash runs is left
// to that hash's end.
func TestHasherKeepsMemoryWhileHashing(t *testing.T) {
	var released int
	h := users.NewHasherReleasing(cheap, 0, func() { released++ })
	done := h.Occupy()
	h.ReleaseIfQuiet()
	if released != 0 {
		t.Fatalf("released %d times with a hash running", released)
	}
	done()
	h.ReleaseIfQuiet()
	if released != 1 {
		t.Fatalf("released %d times when quiet, want 1", released)
	}
}
