//! HTTP edge: REST API, dashboard, metrics.
