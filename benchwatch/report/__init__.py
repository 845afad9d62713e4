"""Static HTML reports with inline SVG: the dashboards report and the bench/replay report."""
