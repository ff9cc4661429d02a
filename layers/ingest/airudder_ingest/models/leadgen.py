"""WorkFlow_LeadsGeneration webhooks (../shared/airudder-api/leads-generation.md).

No LeadsGeneration page could be read; every item maps to a Workflow twin (leads-generation.md §1),
so each model is its Workflow twin with its own webhook type: the stored event records which product
sent it, and a change to the Workflow parsing applies here too.
"""

from __future__ import annotations

from airudder_ingest.models.base import variant
from airudder_ingest.models.workflow import WorkflowCallCompleted, WorkflowCustomApiPush, WorkflowDialerPush

LeadgenDialerPush = variant(
    WorkflowDialerPush,
    "LeadgenDialerPush",
    "leadgen.dialer",
    "Webhook of Predictive Dialer Task/Contacts/Agents Status Changes (WorkFlow_LeadsGeneration)",
    "Predictive-dialer pushes of a lead-generation workflow (TaskStatus, ContactStatus, AgentStatus).",
)
LeadgenCallCompleted = variant(
    WorkflowCallCompleted,
    "LeadgenCallCompleted",
    "leadgen.call",
    "End Status Notification from the Dimension of Phone Call (WorkFlow_LeadsGeneration)",
    "End status of one phone call of a lead-generation workflow.",
)
LeadgenCustomApiPush = variant(
    WorkflowCustomApiPush,
    "LeadgenCustomApiPush",
    "leadgen.custom_api",
    "Custom API Data Push (WorkFlow_LeadsGeneration)",
    "Data pushed by a custom-API node of a lead-generation workflow.",
)
