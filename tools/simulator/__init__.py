"""AIRUDDER tenant simulator: the pull API over a seeded data set, fault injection, and a webhook
pusher with AIRUDDER's retry rule. `python -m tools.simulator --help` for the command line."""

from __future__ import annotations

from .bodies import RawJson, call_completed_body, call_record, dialer_contact_status_body
from .dataset import Call, Dataset, DatasetConfig, NodeTask, Workflow
from .faults import ENDPOINTS, Fault, FaultQueue
from .pusher import Delivery, PushReport, WebhookPusher
from .server import DEFAULT_PATHS, METHODS, AirudderSimulator, RequestRecord

__all__ = [
    "DEFAULT_PATHS",
    "ENDPOINTS",
    "METHODS",
    "AirudderSimulator",
    "Call",
    "Dataset",
    "DatasetConfig",
    "Delivery",
    "Fault",
    "FaultQueue",
    "NodeTask",
    "PushReport",
    "RawJson",
    "RequestRecord",
    "WebhookPusher",
    "Workflow",
    "call_completed_body",
    "call_record",
    "dialer_contact_status_body",
]
