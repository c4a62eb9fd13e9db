"""The job service, in parts (each module says what it owns):

- ``layout``: where a job's files live (subfolder names, staging, job and asset folders);
- ``lifecycle``: the only code that changes a job's status (allowed changes in one table);
- ``tracking``: ComfyUI's execution events → the lifecycle; ``throttle``: progress events per job;
- ``outputs`` / ``outputs_storage``: a finished prompt's files, and outputs in object storage;
- ``assets``: accepting uploads (off the event loop) and asset ids in job inputs;
- ``idempotency``: ``Idempotency-Key``; ``listing``: pages of the job list;
- ``service``: ``JobService``, the small facade the routes, recovery and retention use.
"""

from .listing import DEFAULT_PAGE, MAX_PAGE
from .service import JobService

__all__ = ["DEFAULT_PAGE", "MAX_PAGE", "JobService"]
