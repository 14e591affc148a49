"""ocrflow's service side, one subpackage per layer; imports run down the list, never up:

- `cli`: the `ocrflow` command;
- `http` (the ingress) and `worker` (arq functions), which never import each other;
- `jobs`: job records, states, events, admission and limits, in Redis;
- `storage`: sources and outputs, on local disk or S3;
- `runtime`: processes and what they share: the OCR pool, supervision, logs, the address guard;
- `settings`, `errors`: read by every layer.

`client` (the HTTP client and bulk submission) stands apart and imports nothing of the server.
`.importlinter` in `pyproject.toml` holds these rules; `scripts/test` checks them.
"""
