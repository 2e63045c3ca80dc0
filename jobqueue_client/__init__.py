"""A Python client for the JobQueue REST API: submit jobs, wait for them, read their results.

::

    from jobqueue_client import JobQueue

    with JobQueue("http://127.0.0.1:8000") as jq:
        job = jq.submit({"method": "GET", "url": "https://example.org/"})
        print(jq.wait(job.job_id, timeout=60).response_status)

``AsyncJobQueue`` has the same methods, awaitable. It depends on httpx and the standard library
only, not on the server's packages.

Exceptions::

    JobQueueClientError             everything this package raises
    ├── ApiError                    an error status: .status_code, .code, .detail, .message
    │   ├── InvalidJob              422 invalid_job: .errors, .warnings (dicts with "location")
    │   ├── NotFound                404
    │   ├── Conflict                409 (cancel an ended job, retry a job that is not failed)
    │   ├── TooLarge                413
    │   └── Unauthorized            401, 403
    ├── TransportError              no answer: connection refused, timeout, ...
    ├── UnexpectedResponse          a success status without the documented JSON
    └── WaitTimeout                 wait() ran out of time: .job_id, .timeout, .last
"""

from ._calls import JobDocument, JobFilters
from .client import AsyncJobQueue, JobQueue
from .errors import (
    ApiError,
    Conflict,
    InvalidJob,
    JobQueueClientError,
    NotFound,
    TooLarge,
    TransportError,
    Unauthorized,
    UnexpectedResponse,
    WaitTimeout,
)
from .models import (
    TASK_STATUSES,
    TERMINAL_STATUSES,
    Attempt,
    CallbackResult,
    Job,
    JobDetail,
    JobPage,
    JobResult,
    JobSummary,
    TaskDetail,
    TaskResult,
    Validation,
    WebhookDelivery,
)

__all__ = [
    "TASK_STATUSES",
    "TERMINAL_STATUSES",
    "ApiError",
    "AsyncJobQueue",
    "Attempt",
    "CallbackResult",
    "Conflict",
    "InvalidJob",
    "Job",
    "JobDetail",
    "JobDocument",
    "JobFilters",
    "JobPage",
    "JobQueue",
    "JobQueueClientError",
    "JobResult",
    "JobSummary",
    "NotFound",
    "TaskDetail",
    "TaskResult",
    "TooLarge",
    "TransportError",
    "Unauthorized",
    "UnexpectedResponse",
    "Validation",
    "WaitTimeout",
    "WebhookDelivery",
]
