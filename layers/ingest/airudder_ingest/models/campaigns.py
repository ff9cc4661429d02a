"""Campaign products: Collection, Telemarketing & E-commerce, Info Check (../shared/airudder-api/campaigns.md).

Each product has the same three webhooks — Webhook of Plan (plan end status), Webhook of Task (task
end status) and Webhook of Call (end status per phone call) — posted to /webhooks/{product}/plan,
/task and /call. No body of any of them was recovered: identifiers are looked for under every
spelling AIRUDDER uses (snake_case in the Workflow APIs, PascalCase such as `TaskID` in the campaign
task APIs). The call webhooks share the call vocabulary of the Workflow call notification (calls.py);
Info Check's call payload is a separate format, modelled apart.

Entities: a plan is PLAN#<plan id>; a campaign task TASK#<task id> (kept apart from the dialer
task, DTASK, which is another product's id space); a call CALL#<call id>.
"""

from __future__ import annotations

from typing import Any

from airudder_ingest.models.base import EventFacts, Model, Text, WebhookModel, alias, file_under, variant
from airudder_ingest.models.calls import PLAN_ID, CallFields, InfoCheckCallFields
from airudder_ingest.models.spellings import TASK_ID

PRODUCTS = {
    "collection": "Collection",
    "telemarketing": "Telemarketing & E-commerce",
    "infocheck": "Info Check",
}
FINISH_TIME = (
    "end_time",
    "endTime",
    "EndTime",
    "finish_time",
    "finishTime",
    "finished_at",
    "update_time",
    "updateTime",
    "timestamp",
    "time",
)


# --- Webhook of Plan ---------------------------------------------------------------------------------


class CampaignPlanFinished(WebhookModel):
    """Webhook of Plan (计划结束状态通知): a plan — an ordered chain of tasks built from a strategy —
    reached its end status."""

    plan_id: Text = alias(*PLAN_ID)
    plan_name: Text = alias("plan_name", "planName", "PlanName")
    strategy_id: Text = alias("strategy_id", "strategyId", "StrategyID", "strategyID")
    status: Text = alias("status", "plan_status", "planStatus", "PlanStatus", "state", "Status", "State")
    end_time: Any = alias(*FINISH_TIME)

    def facts(self) -> EventFacts:
        return file_under(("PLAN", "plan_id", self.plan_id), event_time=self.end_time, status=self.status)


# --- Webhook of Task ---------------------------------------------------------------------------------


class CampaignTaskFinished(WebhookModel):
    """Webhook of Task (任务结束状态通知): a calling task ended. In a plan each round is a task, so a
    plan's task may name its plan and round."""

    task_id: Text = alias(*TASK_ID)
    task_name: Text = alias("task_name", "taskName", "TaskName")
    plan_id: Text = alias(*PLAN_ID)
    # Which round of its plan (a number in our samples; kept as sent, since its form is not known).
    round: Any = alias("round", "round_no", "roundNo", "Round", "round_index", "roundIndex")
    status: Text = alias("status", "task_status", "taskStatus", "TaskStatus", "state", "Status", "State")
    end_time: Any = alias(*FINISH_TIME)

    def facts(self) -> EventFacts:
        return file_under(
            ("TASK", "task_id", self.task_id), event_time=self.end_time, status=self.status, task_id=self.task_id
        )


# --- Webhook of Call ---------------------------------------------------------------------------------


class CampaignCallCompleted(CallFields):
    """Webhook of Call (任务电话维度拨打结束状态通知), Collection and Telemarketing & E-commerce: one
    number of a task finished. Same vocabulary as the Workflow call notification, without the
    workflow ids; a plan's call may name its plan."""

    plan_id: Text = alias(*PLAN_ID)

    def facts(self) -> EventFacts:
        return self.call_facts()


class CampaignInfoCheckCallCompleted(InfoCheckCallFields):
    """Webhook of Call, Info Check: the call fields plus the verification outcome."""

    plan_id: Text = alias(*PLAN_ID)

    def facts(self) -> EventFacts:
        return self.call_facts()


# --- Each product's webhooks: the bodies above, under the product's own webhook type and title --------


def _webhook(body: type[Model], name: str, product: str, kind: str) -> type[Model]:
    """The webhook of `kind` (plan, task, call) of one product: `body` under the product's type and title."""
    return variant(body, name, f"{product}.{kind}", f"Webhook of {kind.title()} ({PRODUCTS[product]})")


CollectionPlanFinished = _webhook(CampaignPlanFinished, "CollectionPlanFinished", "collection", "plan")
TelemarketingPlanFinished = _webhook(CampaignPlanFinished, "TelemarketingPlanFinished", "telemarketing", "plan")
InfoCheckPlanFinished = _webhook(CampaignPlanFinished, "InfoCheckPlanFinished", "infocheck", "plan")
CollectionTaskFinished = _webhook(CampaignTaskFinished, "CollectionTaskFinished", "collection", "task")
TelemarketingTaskFinished = _webhook(CampaignTaskFinished, "TelemarketingTaskFinished", "telemarketing", "task")
InfoCheckTaskFinished = _webhook(CampaignTaskFinished, "InfoCheckTaskFinished", "infocheck", "task")
CollectionCallCompleted = _webhook(CampaignCallCompleted, "CollectionCallCompleted", "collection", "call")
TelemarketingCallCompleted = _webhook(CampaignCallCompleted, "TelemarketingCallCompleted", "telemarketing", "call")
InfoCheckCallCompleted = _webhook(CampaignInfoCheckCallCompleted, "InfoCheckCallCompleted", "infocheck", "call")
