package supervisor

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/microshop/microshop/internal/platform/logging/logtest"
)

// TestCopyLines: every line comes out whole with the name prefix, a last line
// without a newline gets one, and a line longer than the buffer is cut with
// "…" without losing the lines after it.
func TestCopyLines(t *testing.T) {
	long := strings.Repeat("x", 200<<10)
	tests := []struct {
		name, in, want string
	}{
		{"lines", "a\nb\n", "users    | a\nusers    | b\n"},
		{"no final newline", "a\nb", "users    | a\nusers    | b\n"},
		{"empty", "", ""},
		{"over-long line", "a\n" + long + "\nb\n", "users    | a\nusers    | " + long[:64<<10] + "…\nusers    | b\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			s := &Supervisor{Output: &out}
			pr, pw := io.Pipe()
			go func() {
				for in := tc.in; in != ""; { // in small pieces, as a pipe delivers them
					n := min(len(in), 7000)
					pw.Write([]byte(in[:n]))
					in = in[n:]
				}
				pw.Close()
			}()
			s.copyLines("users", pr)
			if got := out.String(); got != tc.want {
				t.Errorf("output = %.200q (%d bytes), want %.200q (%d bytes)", got, len(got), tc.want, len(tc.want))
			}
		})
	}
}

// TestCopyLinesDoesNotHoldBackALine: a complete line goes out while the rest
// of what arrived with it (a line not finished yet) waits for its newline.
func TestCopyLinesDoesNotHoldBackALine(t *testing.T) {
	var out logtest.Buffer
	s := &Supervisor{Output: &out}
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.copyLines("users", pr)
	}()
	pw.Write([]byte("first\nsecond, unfinished"))
	for deadline := time.Now().Add(10 * time.Second); out.String() != "users    | first\n"; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("output = %q, want the first line while the second is unfinished", out.String())
		}
	}
	pw.Write([]byte(" now\n"))
	pw.Close()
	<-done
	if want := "users    | first\nusers    | second, unfinished now\n"; out.String() != want {
		t.Fatalf("output = %q, want %q", out.String(), want)
	}
}
