package supervisor

import (
	"bytes"
	"io"
	"strings"
	"testing"
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
