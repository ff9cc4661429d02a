"""The spellings of the identifiers that several products' webhooks carry: every name AIRUDDER uses, or
is likely to use, for the same field (a model reads the first one present; see models.base.alias).
Spellings only one product uses stay beside its models (calls.py, chatbot.py, campaigns.py)."""

CALL_ID = ("call_id", "callid", "callId", "CallID", "callID")
TASK_ID = ("task_id", "taskId", "TaskID", "taskID", "taskid")
CASE_ID = ("case_id", "caseId", "caseid", "CaseID")
# `recLink`: dialer webhooks [DOC]; `reclink`: PDS pull records [3P].
RECORDING = (
    "recLink",
    "reclink",
    "rec_link",
    "record_url",
    "recording_url",
    "recordingUrl",
    "RecordingUrl",
    "record_link",
    "recording_link",
    "recordUrl",
    "recording",
)
# The agent: `agentName` in dialer pushes and PDS records [3P]; the others are our guesses.
AGENT = ("agentName", "agent_name", "agent", "agentId", "agent_id", "userName", "AgentName")
