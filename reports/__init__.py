"""Tables, CSV and plots made from :class:`attnforge.sim.analytical.result.Result` lists; the paper comparisons."""

from attnforge.reports.tables import results_frame, text_table

__all__ = ["results_frame", "text_table"]
