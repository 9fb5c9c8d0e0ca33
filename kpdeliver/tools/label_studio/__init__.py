"""Label Studio: one project per annotator, local-files or S3 storage for the batch's images
(`storage.py`), tasks keyed by the batch file name, snapshot exports pulled into
`annotations/<annotator>/`."""

from kpdeliver.tools.label_studio.client import LabelStudioClient, Project, ToolError
from kpdeliver.tools.label_studio.links import with_task_links
from kpdeliver.tools.label_studio.pull import PullReport, pull_batch
from kpdeliver.tools.label_studio.push import ProjectPush, push_batch

__all__ = [
    "LabelStudioClient",
    "Project",
    "ProjectPush",
    "PullReport",
    "ToolError",
    "pull_batch",
    "push_batch",
    "with_task_links",
]
