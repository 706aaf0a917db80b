"""What people read about a reconcile: the Markdown report (a pull-request comment, with a
Mermaid chart) and the F1 charts (PNG/SVG through matplotlib)."""
