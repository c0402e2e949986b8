"""Safe one-command fixes for what the validator finds, every change in one undoable journal entry."""

from prep.fix.apply import FixReport, apply_fixes, iter_fix, run_fixes
from prep.fix.options import ALL_MAX_SIDE, FIX_CODES, FixOptions
from prep.fix.plan import FixPlan, plan_fixes

__all__ = ["ALL_MAX_SIDE", "FIX_CODES", "FixOptions", "FixPlan", "FixReport", "apply_fixes", "iter_fix",
           "plan_fixes", "run_fixes"]
