"""Workflow: the steps a user runs, as library calls over files and saved plans.

Each step reads its inputs (CT, anatomy folder, plan), calls the planners, and writes its
outputs all or nothing: the command line and the demo are thin over these functions.
"""

from seldinger.workflow.case import PlanCase, Stages, load_plan_case, quiet_stages

__all__ = ["PlanCase", "Stages", "load_plan_case", "quiet_stages"]
