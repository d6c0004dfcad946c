"""Prometheus metrics, one registry per app so several apps (tests) never collide."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class Telemetry:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.request_seconds = Histogram(
            "reid_http_request_duration_seconds",
            "Time from request start to the end of the response, by route.",
            ["method", "route", "status"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.errors = Counter(
            "reid_errors_total",
            "Error responses by stable error code.",
            ["code"],
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "reid_batch_size",
            "Crops per forward pass of the dynamic batcher.",
            buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )
        self.batch_wait_seconds = Histogram(
            "reid_batch_queue_wait_seconds",
            "Time a request waited in the batcher queue before its forward pass began.",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.forward_seconds = Histogram(
            "reid_forward_seconds",
            "Duration of one batched forward pass.",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.search_seconds = Histogram(
            "reid_search_seconds",
            "Duration of one gallery search, including widening.",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.gallery_entries = Gauge(
            "reid_gallery_entries",
            "Entries currently searchable in the index.",
            registry=self.registry,
        )
        self.enrolled = Counter(
            "reid_enrolled_entries_total",
            "Gallery entries created.",
            registry=self.registry,
        )
        self.deleted = Counter(
            "reid_deleted_entries_total",
            "Gallery entries deleted (single deletes and erasures).",
            registry=self.registry,
        )
        self.applied_seq = Gauge(
            "reid_changes_applied_seq",
            "The last change-log sequence number this replica's index has applied.",
            registry=self.registry,
        )
        self.head_seq = Gauge(
            "reid_changes_head_seq",
            "The database's newest change-log sequence number, when last looked at.",
            registry=self.registry,
        )
        self.lag_changes = Gauge(
            "reid_replica_lag_changes",
            "Committed changes this replica's index has not applied yet.",
            registry=self.registry,
        )
        self.lag_seconds = Gauge(
            "reid_replica_lag_seconds",
            "How long the oldest change this replica has not applied has been committed.",
            registry=self.registry,
        )
        self.changes_applied = Counter(
            "reid_changes_applied_total",
            "Change-log entries this replica has read and applied.",
            registry=self.registry,
        )
