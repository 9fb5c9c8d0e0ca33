"""One client's config and locations, checked before anything runs.

- `isolation.py`: the prefixes a client owns, and the refusal of a config reaching into another
  client's (IsolationError);
- `check.py`: `kpdeliver check`, every problem of a config at once (fields, overlaps, pre-flight);
- `iam.py`: the client's least-privilege S3 policy (`kpdeliver iam`).

Whether a key is safe (no '..', no absolute path, no control characters) is the store's rule:
`kpdeliver.storage.keys`.
"""
