"""get_record's own figures, beside the request metrics every function has (common/metrics.py)."""

from prometheus_client import Counter

from common.metrics import PREFIX

BYTES_SERVED = Counter(f"{PREFIX}_download_bytes_served_total", "Bytes of MP3 sent.")
DOWNLOADS = Counter(
    f"{PREFIX}_downloads_total",
    "Downloads answered, by kind: full (200), ranged (206), head, not_modified (304).",
    ["kind"],
)
# Every series from the start, at 0, so rates and alerts see it before its first event.
for kind in ("full", "ranged", "head", "not_modified"):
    DOWNLOADS.labels(kind)
