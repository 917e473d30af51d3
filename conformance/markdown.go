package conformance

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// WriteMarkdown writes results as the Markdown page of spec/results/: a
// heading, intro, the table, and the list of cases that did not pass. The
// observed column is normalized (addresses and durations replaced), so that
// the page changes only when behaviour does.
func WriteMarkdown(w io.Writer, title, intro string, results []Result) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# %s\n\n%s\n\n", title, strings.TrimSpace(intro))
	fmt.Fprintln(&b, "| case | rule | mode | outcome | expected | observed |")
	fmt.Fprintln(&b, "|---|---|---|---|---|---|")
	var off []Result
	for _, r := range results {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", r.ID, r.Rule, r.Mode, r.Outcome, cell(r.Expected), cell(normalize(r.Observed)))
		if r.Outcome != Pass {
			off = append(off, r)
		}
	}
	fmt.Fprintln(&b, "\n## Deviations and cases not applicable")
	fmt.Fprintln(&b)
	if len(off) == 0 {
		fmt.Fprintln(&b, "None: every case passes.")
	}
	for _, r := range off {
		fmt.Fprintf(&b, "- `%s` (%s): %s — %s\n", r.ID, r.Rule, r.Outcome, normalize(r.Observed))
	}
	_, err := w.Write(b.Bytes())
	return err
}

var (
	addrRE     = regexp.MustCompile(`(\d{1,3}\.){3}\d{1,3}:\d+`)
	durationRE = regexp.MustCompile(`\b\d+(\.\d+)?(ns|µs|ms|s)\b`)
)

func normalize(s string) string {
	s = addrRE.ReplaceAllString(s, "ADDR")
	return durationRE.ReplaceAllString(s, "D")
}

func cell(s string) string { return strings.ReplaceAll(oneLine(s), "|", `\|`) }

// ReadOutcomes reads the case and outcome columns of a page written by
// WriteMarkdown.
func ReadOutcomes(page []byte) (map[string]Outcome, error) {
	out := map[string]Outcome{}
	sc := bufio.NewScanner(bytes.NewReader(page))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		f := strings.Split(sc.Text(), " | ")
		if len(f) < 6 || !strings.HasPrefix(f[0], "| ") || f[0] == "| case" || strings.HasPrefix(f[0], "|---") {
			continue
		}
		var o Outcome
		if err := o.UnmarshalText([]byte(f[3])); err != nil {
			return nil, fmt.Errorf("case %s: %w", strings.TrimPrefix(f[0], "| "), err)
		}
		out[strings.TrimPrefix(f[0], "| ")] = o
	}
	return out, sc.Err()
}

// CompareOutcomes lists the cases whose outcome differs from want, and
// those missing on either side, one line each.
func CompareOutcomes(want map[string]Outcome, results []Result) []string {
	var diffs []string
	seen := map[string]bool{}
	for _, r := range results {
		seen[r.ID] = true
		w, ok := want[r.ID]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("%s: %s, not in the committed table", r.ID, r.Outcome))
		case w != r.Outcome:
			diffs = append(diffs, fmt.Sprintf("%s: %s, the committed table says %s (observed: %s)", r.ID, r.Outcome, w, r.Observed))
		}
	}
	for id := range want {
		if !seen[id] {
			diffs = append(diffs, fmt.Sprintf("%s: in the committed table, not run", id))
		}
	}
	return diffs
}
