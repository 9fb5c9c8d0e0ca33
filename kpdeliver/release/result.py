"""What a delivery run returns (`flows.delivery`), from the release it published or found."""

from __future__ import annotations

from dataclasses import dataclass

from kpdeliver.release.layout import Manifest
from kpdeliver.release.publish import Published


@dataclass(frozen=True)
class DeliveryResult:
    """What a delivery run returns: the release it published, or found published already from the
    same inputs (`duplicate_of_published`), with the manifest's verdict, counts and QA summary."""

    release: str  # the release folder's location (a path or URL)
    version: int
    duplicate_of_published: bool
    verdict: str | None
    counts: dict[str, int]
    qa: dict  # reasons and findings_by_check, as in the manifest
    findings: str  # where qa/findings.parquet is
    report: str  # where qa/report.html is
    fingerprint: str | None
    report_link: str | None = None  # the report's presigned URL on S3 (its path locally), set by the flow

    @classmethod
    def of(cls, release: Published, *, duplicate: bool) -> DeliveryResult:
        manifest = Manifest.of(release.manifest)
        return cls(
            release=release.location,
            version=release.version,
            duplicate_of_published=duplicate,
            verdict=manifest.verdict,
            counts=manifest.counts,
            qa=manifest.qa,
            findings=f"{release.location}/qa/findings.parquet",
            report=f"{release.location}/qa/report.html",
            fingerprint=manifest.fingerprint,
        )
