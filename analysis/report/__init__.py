"""The report: analysis frames -> formatted tables, figures, terminal summary, HTML / LaTeX / PDF."""
