"""Tables, CSV and plots made from :class:`sim.result.Result` lists; the paper comparisons."""

from reports.tables import results_frame, text_table

__all__ = ["results_frame", "text_table"]
