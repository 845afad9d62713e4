"""Static HTML reports with inline SVG: the dashboards report (`dashboards`) and the bench and
replay reports (`bench`), drawn with one toolkit: `svg` (palette, number formats, charts) and
`html` (page, stylesheet, escaping)."""
