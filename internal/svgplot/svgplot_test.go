package svgplot

import (
	"bytes"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteSVGIsWellFormed(t *testing.T) {
	c := Chart{
		Title: "restart all <N=4>", XLabel: "seconds", YLabel: "pairs",
		Series: []Series{
			{Name: "concord", Steps: true, Points: []XY{{0, 0}, {0.5, 3}, {1.2, 6}}},
			{Name: "bound", Dashed: true, Points: []XY{{0, 6}, {2, 6}}},
		},
		Marks: []Mark{{X: 0.1, Label: "last start"}},
	}
	var b bytes.Buffer
	if err := c.WriteSVG(&b); err != nil {
		t.Fatal(err)
	}
	d := xml.NewDecoder(bytes.NewReader(b.Bytes()))
	polylines := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, b.String())
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "polyline" {
			polylines++
		}
	}
	if polylines != 2 {
		t.Errorf("%d polylines, want 2", polylines)
	}
	if !strings.Contains(b.String(), "restart all &lt;N=4&gt;") {
		t.Errorf("title not escaped")
	}
	if out := os.Getenv("SVGPLOT_OUT"); out != "" {
		_ = os.WriteFile(filepath.Join(out, "sample.svg"), b.Bytes(), 0o644)
	}
}

func TestTicks(t *testing.T) {
	for _, tc := range []struct {
		lo, hi float64
		want   []float64
	}{
		{0, 10, []float64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
		{0, 496, []float64{0, 100, 200, 300, 400}},
		{0.2, 1.1, []float64{0.2, 0.4, 0.6, 0.8, 1}},
	} {
		got := ticks(tc.lo, tc.hi, 8)
		if tc.hi == 10 {
			got = ticks(tc.lo, tc.hi, 10)
		}
		if len(got) != len(tc.want) {
			t.Errorf("ticks(%v, %v) = %v, want %v", tc.lo, tc.hi, got, tc.want)
			continue
		}
		for i := range got {
			if d := got[i] - tc.want[i]; d > 1e-9 || d < -1e-9 {
				t.Errorf("ticks(%v, %v) = %v, want %v", tc.lo, tc.hi, got, tc.want)
				break
			}
		}
	}
}
