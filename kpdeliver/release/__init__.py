"""The release stage, in the order a delivery runs it:

quarantine  hold back instances (or images) with error findings, with their raw form
package     build every release file in memory (ReleasePlan), with counts and sign-off
signoff     Counts and Verdict: the counts judged against the client's QA thresholds
publish     stage, claim a version, copy, write the manifest last
catalog     `<client>/catalog.parquet`, one typed row appended per release (conditional write)
layout      the release layout (names, version folders, manifest reading) shared by
            publish, verify and share
verify      re-hash a published release against its manifest
share       the release archive beside the folder, and links to it
"""
