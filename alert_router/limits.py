"""The router's documented input and read limits (docs/alert-router.md, "Limits").

Every one bounds what a single request can cost; a request over a limit gets a 400 or 413
that names it. Sizes are in characters of the decoded JSON strings.
"""

from __future__ import annotations

ALERTS_PER_REQUEST = 1000
LABELS_PER_ALERT = 64
LABEL_NAME_CHARS = 256
LABEL_VALUE_CHARS = 4096
ANNOTATIONS_PER_ALERT = 64
ANNOTATION_NAME_CHARS = 256
ANNOTATION_VALUE_CHARS = 16384
GENERATOR_URL_CHARS = 4096
MATCHERS_PER_SILENCE = 64
MATCHER_VALUE_CHARS = 4096
SILENCE_COMMENT_CHARS = 4096
SILENCE_CREATED_BY_CHARS = 256
FILTERS_PER_REQUEST = 64
# Reads: one answer is at most this many items; `limit`/`offset` page through the rest.
READ_PAGE_MAX = 5000
PAGE_ROWS = 200  # rows per table on the web page `GET /`
