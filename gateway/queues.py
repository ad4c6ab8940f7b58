"""The names the web process and the workers agree on in Redis."""

INTAKE_LIST = "consulta:intake"  # new inbound IDs, waiting to be gathered into batched jobs
INTAKE_QUEUE = "intake"  # RQ queue of batched intake jobs
REPLIES_QUEUE = "replies"  # RQ queue of reply-sending jobs
