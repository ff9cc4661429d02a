"""WorkFlow_LeadsGeneration webhooks (../shared/airudder-api/leads-generation.md).

No LeadsGeneration page could be read; every item maps to a Workflow twin (leads-generation.md §1),
so each model is its Workflow twin with its own webhook type: the stored event records which product
sent it, and a change to the Workflow parsing applies here too.
"""

from __future__ import annotations

from airudder_ingest.models.workflow import WorkflowCallCompleted, WorkflowCustomApiPush, WorkflowDialerPush


class LeadgenDialerPush(WorkflowDialerPush):
    """Predictive-dialer pushes of a lead-generation workflow (TaskStatus, ContactStatus, AgentStatus)."""

    webhook_type = "leadgen.dialer"
    title = "Webhook of Predictive Dialer Task/Contacts/Agents Status Changes (WorkFlow_LeadsGeneration)"


class LeadgenCallCompleted(WorkflowCallCompleted):
    """End status of one phone call of a lead-generation workflow."""

    webhook_type = "leadgen.call"
    title = "End Status Notification from the Dimension of Phone Call (WorkFlow_LeadsGeneration)"


class LeadgenCustomApiPush(WorkflowCustomApiPush):
    """Data pushed by a custom-API node of a lead-generation workflow."""

    webhook_type = "leadgen.custom_api"
    title = "Custom API Data Push (WorkFlow_LeadsGeneration)"
