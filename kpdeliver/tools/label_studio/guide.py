"""The labeling guide in each Label Studio project: its instructions (`expert_instruction`), shown
to the annotator before labeling (`show_instruction`). Label Studio sanitises the HTML (bleach: no
script, no data: URIs), so kpdeliver sends the guide's embedded form (`report.guide.tool_instructions`)."""

from __future__ import annotations

from collections.abc import Iterable

from kpdeliver.tools.label_studio.client import LabelStudioClient


def set_instructions(client: LabelStudioClient, projects: Iterable[int], html: str) -> int:
    """Put `html` as the instructions of every project (shown before labeling); how many were set."""
    n = 0
    for project in projects:
        if project > 0:
            client.update_project(project, expert_instruction=html, show_instruction=True)
            n += 1
    return n
