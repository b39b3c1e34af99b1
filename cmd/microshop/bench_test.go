package main

import (
	"bytes"
	"context"
	"io"
	"strconv"
	"strings"
	"testing"
)

// TestBench runs a short bench end to end: it starts the system (this test
// binary, see TestMain) as services and as a monolith and loads each.
func TestBench(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"bench", "--duration", "1s", "--rate", "20", "--warmup", "0s",
		"--customers", "2", "--idle", "100ms"}, func(string) string { return "" }, &out, io.Discard)
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, out.String())
	}
	table := out.String()
	if !strings.Contains(table, "| | services | monolith |") {
		t.Fatalf("no services | monolith header in\n%s", table)
	}
	var row string
	for line := range strings.SplitSeq(table, "\n") {
		if strings.HasPrefix(line, "| requests (measured) |") {
			row = line
		}
	}
	cells := strings.Split(strings.Trim(row, "| "), "|")
	if len(cells) != 3 {
		t.Fatalf("requests row %q, want a label and two modes", row)
	}
	for i, mode := range []string{"services", "monolith"} {
		n, err := strconv.Atoi(strings.TrimSpace(cells[i+1]))
		if err != nil || n == 0 {
			t.Errorf("%s: requests %q, want a non-zero count\n%s", mode, cells[i+1], table)
		}
	}
}
