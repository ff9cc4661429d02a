"""The simulated tenant's data: workflows, their node tasks (one outbound task each) and calls.

Generated from a seed, so the same arguments give the same ids, numbers, states and times. The data
can grow (`add_calls`, `add_workflow`, `touch_call`): every change gets an `update_time` later than
anything before it, so a query by update_time window returns exactly the changed records.

Times are synthetic (they start at `epoch`), not the wall clock.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

DEFAULT_EPOCH = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)

# Outcomes: (status, hangup_reason, dialer hangupReason code). The call-completion body's words follow
# the team's sample (events/workflow/call/completed.json); the dialer codes follow the third-party
# hangupReason table in shared/airudder-api/workflow.md Appendix C. Neither is documented by AIRUDDER.
ANSWERED_OUTCOMES: tuple[tuple[str, str, int], ...] = (
    ("answered", "user_hangup", 12),
    ("answered", "robot_hangup", 12),
)
UNANSWERED_OUTCOMES: tuple[tuple[str, str, int], ...] = (
    ("no_answer", "no_answer", 2),
    ("busy", "busy", 3),
    ("unreachable", "switched_off", 6),
    ("voicemail", "voicemail", 16),
    ("rejected", "user_hangup", 14),
)
NODE_TYPES: tuple[str, ...] = ("robot", "pds")


@dataclass
class NodeTask:
    """A workflow node that ran one outbound (call) task."""

    nodetask_id: str
    nodetask_name: str
    node_type: str  # "robot" (call-completion webhooks) or "pds" (predictive dialer: ContactStatus pushes)
    task_id: str
    task_name: str
    group_name: str
    workflow_id: str
    create_time: dt.datetime
    update_time: dt.datetime
    call_ids: list[str] = field(default_factory=list)


@dataclass
class Workflow:
    workflow_id: str
    workflow_name: str
    status: str
    create_time: dt.datetime
    update_time: dt.datetime
    nodes: list[NodeTask] = field(default_factory=list)
    n_calls: int = 0
    current_case: tuple[str, str] = ("", "")  # (case_id, callee) being called through the nodes


@dataclass
class Call:
    call_id: str
    case_id: str
    callee: str
    workflow_id: str
    workflow_name: str
    nodetask_id: str
    nodetask_name: str
    node_type: str
    task_id: str
    task_name: str
    group_name: str
    status: str
    hangup_reason: str
    dialer_hangup_code: int
    answered: bool
    nth_call: int
    start_time: dt.datetime
    answer_time: dt.datetime | None
    end_time: dt.datetime
    update_time: dt.datetime

    @property
    def talk_duration(self) -> int:
        """Talk time in seconds (0 for unanswered calls)."""
        if self.answer_time is None:
            return 0
        return int((self.end_time - self.answer_time).total_seconds())


@dataclass(frozen=True)
class DatasetConfig:
    seed: int = 1
    workflows: int = 3
    calls_per_workflow: int = 20
    nodes_per_workflow: int = 2
    answer_rate: float = 0.6
    epoch: dt.datetime = DEFAULT_EPOCH


class Dataset:
    """Thread-safe store of the simulated records; readers get copies of lists, never live ones."""

    def __init__(self, config: DatasetConfig | None = None) -> None:
        self.config = config or DatasetConfig()
        self._rng = random.Random(self.config.seed)
        self._lock = threading.RLock()
        self._workflows: dict[str, Workflow] = {}
        self._nodes: dict[str, NodeTask] = {}
        self._tasks: dict[str, NodeTask] = {}
        self._calls: dict[str, Call] = {}
        self._callees: set[str] = set()
        self._clock = self.config.epoch
        self._case_seq = 0
        for _ in range(self.config.workflows):
            self.add_workflow(self.config.calls_per_workflow)
        for wf in list(self._workflows.values())[:-1]:
            wf.status = "Finished"

    # --- growth ------------------------------------------------------------------------------------

    def add_workflow(self, calls: int | None = None, nodes: int | None = None) -> Workflow:
        """A new workflow with its node tasks and `calls` calls (default: calls_per_workflow)."""
        with self._lock:
            created = self._tick(1, 30)
            n = len(self._workflows) + 1
            wf = Workflow(
                workflow_id=self._id(),
                workflow_name=f"sim-workflow-{n:03d}",
                status="Running",
                create_time=created,
                update_time=created,
            )
            for i in range(nodes or self.config.nodes_per_workflow):
                node_type = NODE_TYPES[i % len(NODE_TYPES)]
                node_id = self._id()
                node = NodeTask(
                    nodetask_id=node_id,
                    nodetask_name=f"{'PDS' if node_type == 'pds' else 'Robot'}{i + 1}_{node_id[:6]}",
                    node_type=node_type,
                    task_id=self._id(),
                    task_name=f"wf_{node_type}_task_{node_id}",
                    group_name=f"group{i + 1}",
                    workflow_id=wf.workflow_id,
                    create_time=created,
                    update_time=created,
                )
                wf.nodes.append(node)
                self._nodes[node.nodetask_id] = node
                self._tasks[node.task_id] = node
            self._workflows[wf.workflow_id] = wf
            self.add_calls(self.config.calls_per_workflow if calls is None else calls, wf.workflow_id)
            return wf

    def add_calls(self, n: int, workflow_id: str | None = None) -> list[Call]:
        """`n` new calls in a workflow (default: the newest); each is newer than every record before it."""
        with self._lock:
            if not self._workflows:
                raise ValueError("no workflow to add calls to")
            wf = self._workflows[workflow_id] if workflow_id else list(self._workflows.values())[-1]
            wf.status = "Running"
            return [self._new_call(wf) for _ in range(n)]

    def touch_call(self, call_id: str) -> Call:
        """Mark a call changed (a later update_time), as when AIRUDDER amends a record."""
        with self._lock:
            call = self._calls[call_id]
            call.update_time = self._tick(1, 10)
            self._bump(call)
            return call

    # --- reads ----------------------------------------------------------------------------------------

    def workflows(self) -> list[Workflow]:
        with self._lock:
            return list(self._workflows.values())

    def workflow(self, workflow_id: str) -> Workflow | None:
        with self._lock:
            return self._workflows.get(workflow_id)

    def node(self, nodetask_id: str) -> NodeTask | None:
        with self._lock:
            return self._nodes.get(nodetask_id)

    def task(self, task_id: str) -> NodeTask | None:
        with self._lock:
            return self._tasks.get(task_id)

    def calls(self, ids: Iterable[str] | None = None) -> list[Call]:
        """Calls ordered by (update_time, call_id); all of them, or those with the given ids."""
        with self._lock:
            chosen = self._calls.values() if ids is None else [self._calls[i] for i in ids]
            return sorted(chosen, key=lambda c: (c.update_time, c.call_id))

    def calls_of_task(self, node: NodeTask) -> list[Call]:
        with self._lock:
            return self.calls(node.call_ids)

    def call(self, call_id: str) -> Call | None:
        with self._lock:
            return self._calls.get(call_id)

    @property
    def latest_update(self) -> dt.datetime:
        with self._lock:
            return self._clock

    # --- internals ------------------------------------------------------------------------------------

    def _id(self) -> str:
        return uuid.UUID(int=self._rng.getrandbits(128), version=4).hex

    def _tick(self, low: int, high: int) -> dt.datetime:
        self._clock += dt.timedelta(seconds=self._rng.randint(low, high))
        return self._clock

    def _callee(self) -> str:
        while True:
            number = f"+62812{self._rng.randrange(10**7):07d}"
            if number not in self._callees:
                self._callees.add(number)
                return number

    def _new_call(self, wf: Workflow) -> Call:
        nodes = wf.nodes
        index = wf.n_calls
        node = nodes[index % len(nodes)]
        # Each case (one number) goes through every node in turn, one call per node.
        if index % len(nodes) == 0:
            self._case_seq += 1
            wf.current_case = (f"CASE-{self._case_seq:07d}", self._callee())
        case_id, callee = wf.current_case
        answered = self._rng.random() < self.config.answer_rate
        outcomes = ANSWERED_OUTCOMES if answered else UNANSWERED_OUTCOMES
        status, hangup, code = outcomes[self._rng.randrange(len(outcomes))]
        start = self._tick(5, 90)
        ring = dt.timedelta(seconds=self._rng.randint(3, 25))
        answer_time = start + ring if answered else None
        talk = dt.timedelta(seconds=self._rng.randint(15, 240)) if answered else dt.timedelta(0)
        end = start + ring + talk
        update = end + dt.timedelta(seconds=self._rng.randint(1, 5))
        self._clock = max(self._clock, update)
        call = Call(
            call_id=self._id(),
            case_id=case_id,
            callee=callee,
            workflow_id=wf.workflow_id,
            workflow_name=wf.workflow_name,
            nodetask_id=node.nodetask_id,
            nodetask_name=node.nodetask_name,
            node_type=node.node_type,
            task_id=node.task_id,
            task_name=node.task_name,
            group_name=node.group_name,
            status=status,
            hangup_reason=hangup,
            dialer_hangup_code=code,
            answered=answered,
            nth_call=1,
            start_time=start,
            answer_time=answer_time,
            end_time=end,
            update_time=update,
        )
        wf.n_calls += 1
        node.call_ids.append(call.call_id)
        self._calls[call.call_id] = call
        self._bump(call)
        return call

    def _bump(self, call: Call) -> None:
        wf = self._workflows[call.workflow_id]
        node = self._nodes[call.nodetask_id]
        wf.update_time = max(wf.update_time, call.update_time)
        node.update_time = max(node.update_time, call.update_time)
