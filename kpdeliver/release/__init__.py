"""The release stage, in the order a delivery runs it:

quarantine  hold back instances (or images) with error findings, with their raw form
package     build every release file in memory (ReleasePlan), with counts and sign-off
signoff     Counts and Verdict: the counts judged against the client's QA thresholds
publish     stage (one folder per run), claim the inputs, claim a version, copy, sign,
            write the manifest last: one release per input fingerprint
signing     Ed25519 signature of the manifest, keys from the environment or the caller
catalog     rebuild `<client>/catalog.parquet` from the published manifests
layout      the release layout (names, version folders, manifest reading) shared by
            publish, verify and share
verify      re-hash a published release against its manifest; check its signature, the
            catalogue's manifest hash, the sign-off and counts, and the archive beside it
archive     the release archive beside the folder: built, and checked byte for byte
share       rebuild the archive from a verified release, and links to it
"""
