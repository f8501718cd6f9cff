"""`refine`: the CodeLutra loop (build -> train -> eval, repeated; the best model on validation kept), in modules
by idea: its configuration, the stage runner, the state file, the loop and the report."""

from codelutra_data.trainers.refine.config import RefineConfig
from codelutra_data.trainers.refine.loop import RefineResult, decide, run_refine
from codelutra_data.trainers.refine.report import report_rows, write_report
from codelutra_data.trainers.refine.stages import run_stage

__all__ = ["RefineConfig", "RefineResult", "decide", "report_rows", "run_refine", "run_stage", "write_report"]
