//! The route table: [`ROUTES`] is the one list of what the edge serves, with each endpoint's
//! method, path template and roles. The router takes each route's roles from it, metrics label
//! requests by its templates, `/openapi.json` is built from it, and a test checks the router
//! against it.

use crate::auth::Role;

/// One endpoint.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    /// HTTP method.
    pub method: &'static str,
    /// Path template (`{id}` for a path parameter).
    pub path: &'static str,
    /// Roles allowed; empty means no key needed.
    pub roles: &'static [Role],
    /// One line for the OpenAPI document.
    pub summary: &'static str,
}

const ALL: &[Role] = &[Role::Originator, Role::Analyst, Role::Admin];
const ORIGINATE: &[Role] = &[Role::Originator, Role::Admin];
const ANALYSE: &[Role] = &[Role::Analyst, Role::Admin];
const ADMIN: &[Role] = &[Role::Admin];
const PUBLIC: &[Role] = &[];

/// Every endpoint the edge serves.
pub const ROUTES: &[Route] = &[
    Route { method: "GET", path: "/health", roles: PUBLIC, summary: "Liveness" },
    Route { method: "GET", path: "/ready", roles: PUBLIC, summary: "Readiness: PostgreSQL and Kafka answer" },
    Route { method: "GET", path: "/metrics", roles: ANALYSE, summary: "Prometheus metrics (Prometheus itself scrapes the key-less listener of `edge.metrics_bind`)" },
    Route { method: "GET", path: "/openapi.json", roles: PUBLIC, summary: "This document" },
    Route { method: "GET", path: "/", roles: PUBLIC, summary: "The dashboard page" },
    Route { method: "GET", path: "/assets/{file}", roles: PUBLIC, summary: "The dashboard's static assets" },
    Route { method: "GET", path: "/api/customers/", roles: ALL, summary: "List customers (personal data for originator and admin only)" },
    Route { method: "POST", path: "/api/customers/", roles: ORIGINATE, summary: "Register a customer (201 once stored, 202 if not yet)" },
    Route { method: "GET", path: "/api/customers/{id}", roles: ALL, summary: "One customer" },
    Route { method: "PATCH", path: "/api/customers/{id}", roles: ORIGINATE, summary: "Change a customer (published as CustomerUpdated; the previous record is kept and the change audited)" },
    Route { method: "GET", path: "/api/customers/{id}/history", roles: ORIGINATE, summary: "A customer's changes: who, when, why, and the values before each" },
    Route { method: "POST", path: "/api/loans/apply", roles: ORIGINATE, summary: "Apply: publish the application and return its decision (202 with a link if not decided in time)" },
    Route { method: "GET", path: "/api/loans/applications", roles: ALL, summary: "Applications with their decisions" },
    Route { method: "GET", path: "/api/loans/applications/{id}", roles: ALL, summary: "One application: payload, decision, reasons, loan" },
    Route { method: "GET", path: "/api/loans/loans", roles: ANALYSE, summary: "Loans with their current status" },
    Route { method: "GET", path: "/api/loans/loans/{id}", roles: ANALYSE, summary: "One loan: schedule, payments, DPD and class history" },
    Route { method: "POST", path: "/api/whatif", roles: ALL, summary: "Score a (modified) application with the champion; nothing recorded" },
    Route { method: "GET", path: "/api/portfolio/summary", roles: ANALYSE, summary: "Portfolio summary (seed shape plus net NPA, PCR, PAR, ECL)" },
    Route { method: "GET", path: "/api/portfolio/npa-analysis", roles: ANALYSE, summary: "NPA by IRAC class with provisions" },
    Route { method: "GET", path: "/api/portfolio/repayment-stats", roles: ANALYSE, summary: "Repayment statistics" },
    Route { method: "GET", path: "/api/portfolio/loan-distribution", roles: ANALYSE, summary: "Loans by purpose and status" },
    Route { method: "GET", path: "/api/portfolio/risk-concentration", roles: ANALYSE, summary: "Exposure by purpose, region and grade with Herfindahl indices" },
    Route { method: "GET", path: "/api/portfolio/vintage", roles: ANALYSE, summary: "Vintage curves: cumulative 90+ DPD by months on book" },
    Route { method: "GET", path: "/api/portfolio/roll-rates", roles: ANALYSE, summary: "Roll-rate matrix between DPD buckets" },
    Route { method: "GET", path: "/api/portfolio/trend", roles: ANALYSE, summary: "Daily NPA, PAR and ECL trend" },
    Route { method: "POST", path: "/api/portfolio/stress-test", roles: ANALYSE, summary: "PD and LGD shocks: stressed IFRS 9 stages, ECL and projected NPA" },
    Route { method: "GET", path: "/api/models", roles: ANALYSE, summary: "Model registry" },
    Route { method: "GET", path: "/api/models/drift", roles: ANALYSE, summary: "PSI per feature of the latest applications against the champion's training distribution" },
    Route { method: "GET", path: "/api/models/{version}", roles: ANALYSE, summary: "One model: metrics, comparison, importance" },
    Route { method: "POST", path: "/api/models/{version}/promote", roles: ADMIN, summary: "Promote a model to champion or challenger (admin)" },
];

/// The template of a concrete path (for bounded metric labels).
pub fn template(path: &str) -> &'static str {
    let segs: Vec<&str> = path.split('/').collect();
    for r in ROUTES {
        let t: Vec<&str> = r.path.split('/').collect();
        if t.len() == segs.len()
            && t.iter()
                .zip(&segs)
                .all(|(t, s)| t == s || (t.starts_with('{') && !s.is_empty()))
        {
            return r.path;
        }
    }
    "other"
}

/// The roles allowed on the route `method` `path` (a template); admin only for a route not in
/// the table.
pub(crate) fn roles_of(method: &str, path: &str) -> &'static [Role] {
    ROUTES
        .iter()
        .find(|r| r.method == method && r.path == path)
        .map_or(ADMIN, |r| r.roles)
}
