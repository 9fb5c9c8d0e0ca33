"""The rework loop: what of a release goes back to the annotator who made it, and what came back.

`items.py` builds the rework set of a release (every held-back item and error finding, with the
keypoint, the reason and the partner's or gold's position where QA compared them); `feedback.py`
reads and checks a client's feedback file; `ledger.py` records what is out for rework (so nothing
is sent twice); `packages.py` writes the file route's task packages; `status.py` tells, in the
next delivery, which items came back fixed, which still fail and which are still out.
"""
