package bench

import (
	"os"
	"testing"
)

// TestReadSelf reads this test process, which is resident and shares its
// libraries' and the kernel's vDSO pages, so 0 < PSS <= RSS.
func TestReadSelf(t *testing.T) {
	pid := os.Getpid()
	u, err := Read([]int{pid, pid})
	if err != nil {
		t.Fatal(err)
	}
	if u.Procs != 2 || len(u.Each) != 2 || u.Each[0].PID != pid {
		t.Fatalf("read %d processes %+v, want this one twice", u.Procs, u.Each)
	}
	p := u.Each[0]
	if p.RSS <= 0 || p.PSS <= 0 || p.PSS > p.RSS {
		t.Errorf("RSS %d, PSS %d: want 0 < PSS <= RSS", p.RSS, p.PSS)
	}
	if u.RSS != u.Each[0].RSS+u.Each[1].RSS || u.PSS != u.Each[0].PSS+u.Each[1].PSS {
		t.Errorf("sums RSS %d, PSS %d of %+v", u.RSS, u.PSS, u.Each)
	}
	if _, err := Read([]int{-1}); err == nil {
		t.Error("pid -1: no error")
	}
}
