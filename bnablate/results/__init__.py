"""Run records and the tidy tables rebuilt from them."""

from .records import provenance, run_key, write_record
from .schema import finished, load_records, scan_records
from .tables import build_tables, rebuild_tables

__all__ = ["build_tables", "finished", "load_records", "provenance", "rebuild_tables", "run_key",
           "scan_records", "write_record"]
