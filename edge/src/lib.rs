//! The HTTP edge: the REST API (seed-compatible paths and field names, plus the book's
//! regulatory figures), its OpenAPI document, API keys with roles, per-key rate limits, the
//! dashboard page and Prometheus metrics.
//!
//! The edge never writes the book: it publishes customers and applications to Kafka and reads
//! what the aggregator keeps in PostgreSQL. It writes only API keys and the audit log.
//!
//! Every statement against the database is a typed function of the `book` crate; the edge
//! holds no SQL.
//!
//! # Layout
//! - [`route_table`]: the route table, the one list of route facts (method, path, roles) that
//!   the router, the metrics labels and the OpenAPI document read.
//! - [`routes`]: the warp filters serving the table's routes (uses [`route_table`] and
//!   [`openapi`]).
//! - [`openapi`]: `/openapi.json`, built from [`route_table`].
//! - [`handlers`]: one module per resource.
//! - [`api`]: request and response bodies, and the seed's shapes.
//! - [`auth`]: keys, roles, rate limits. [`error`]: the JSON error shape and `recover`.
//! - [`decisions`]: waiting for the decision on a published application.
//! - [`cache`]: portfolio answers kept in memory for a moment.
//! - [`dashboard`]: the page at `/`. [`metrics`]: `edge_*`.
//! - [`state`]: settings and the state the handlers share; [`server`]: the HTTP server.

pub mod api;
pub mod auth;
pub mod cache;
pub mod dashboard;
pub mod decisions;
pub mod error;
pub mod handlers;
pub mod metrics;
pub mod openapi;
pub mod route_table;
pub mod routes;
pub mod server;
pub mod state;

pub use server::{serve, ClientAddr};
pub use state::{build, Edge, EdgeError, EdgeSettings};
