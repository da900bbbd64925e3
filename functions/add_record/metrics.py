"""add_record's own figures, beside the request metrics every function has (common/metrics.py)."""

from prometheus_client import Counter, Gauge, Histogram

from common.metrics import PREFIX

CONVERSIONS_IN_FLIGHT = Gauge(f"{PREFIX}_conversions_in_flight", "Uploads holding a converter (an ffmpeg).")
CONVERSION_CAPACITY = Gauge(
    f"{PREFIX}_conversions_capacity", "How many uploads may convert at once (MAX_CONCURRENT_CONVERSIONS)."
)
USER_QUEUE_WAIT = Histogram(
    f"{PREFIX}_user_queue_wait_seconds",
    "How long uploads waited behind their own user's converters, whether they got one or not.",
    buckets=[0.001, 0.01, 0.1, 0.5, 1, 2, 5, 10, 30, 60],
)
CONVERSION_SECONDS = Histogram(
    f"{PREFIX}_conversion_seconds",
    "How long an upload held its converter: receiving and converting, until ffmpeg finished.",
    buckets=[0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600],
)
AUDIO_SECONDS = Counter(f"{PREFIX}_audio_seconds_converted_total", "Seconds of audio stored as MP3.")
WAV_BYTES_IN = Counter(f"{PREFIX}_wav_bytes_received_total", "Bytes of WAV files received.")
MP3_BYTES_OUT = Counter(f"{PREFIX}_mp3_bytes_stored_total", "Bytes of MP3 stored.")
REJECTIONS = Counter(
    f"{PREFIX}_upload_rejections_total",
    "Uploads refused, by status (401, 403, 408, 413, 415, 422, 503; 429 is the gateway's, in its own figures).",
    ["status"],
)
# Every series from the start, at 0, so rates and alerts see it before its first event.
for status in ("401", "403", "408", "413", "415", "422", "503"):
    REJECTIONS.labels(status)
