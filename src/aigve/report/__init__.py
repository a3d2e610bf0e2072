"""The HTML report (``aigve report``; written by ``aigve run`` into its output directory).

Needs the ``report`` extra (matplotlib, jinja2). Entry points: :func:`aigve.report.html.build_report`
and :func:`aigve.report.html.write_run_report`.
"""
