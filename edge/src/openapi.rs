//! `/openapi.json`: OpenAPI 3.0 built from the route table, [`ROUTES`], so a route cannot be
//! served without being documented (a test checks both directions).

use serde_json::{json, Map, Value};

use crate::route_table::ROUTES;

/// Names: ASCII letters, space, `.`, `'`, `-`, and letters of other scripts.
const NAME_PATTERN: &str = "^[A-Za-z .'\u{C0}-\u{FFFF}-]{1,200}$";
/// Phone numbers: digits, spaces, `+`, `(`, `)`, `-`.
const PHONE_PATTERN: &str = "^[0-9 +()-]{5,32}$";
/// Free text: no markup and no control characters.
const TEXT_PATTERN: &str = "^[^<>\u{0}-\u{1F}\u{7F}]+$";

fn error_schema() -> Value {
    json!({
        "type": "object",
        "required": ["error", "message"],
        "properties": {
            "error": {"type": "string"},
            "message": {"type": "string"},
            "details": {"nullable": true}
        }
    })
}

fn query_params(path: &str) -> Vec<Value> {
    let q = |name: &str, schema: Value, d: &str| json!({"name": name, "in": "query", "required": false, "schema": schema, "description": d});
    let as_of = q(
        "as_of",
        json!({"type": "string", "format": "date"}),
        "business date (default: the last closed one)",
    );
    match path {
        "/api/customers/" | "/api/loans/applications" | "/api/loans/loans" => vec![
            q(
                "limit",
                json!({"type": "integer", "minimum": 1, "maximum": 500}),
                "rows per page",
            ),
            q(
                "offset",
                json!({"type": "integer", "minimum": 0}),
                "rows to skip",
            ),
            q("status", json!({"type": "string"}), "filter by status"),
            q(
                "customer_id",
                json!({"type": "string"}),
                "filter by customer",
            ),
        ],
        "/api/portfolio/trend" => vec![
            as_of,
            q(
                "days",
                json!({"type": "integer", "minimum": 1, "maximum": 3660}),
                "days of history",
            ),
        ],
        "/api/models/drift" => vec![q(
            "applications",
            json!({"type": "integer", "minimum": 100, "maximum": 100000}),
            "the most recent applications to compare",
        )],
        "/api/portfolio/stress-test" => Vec::new(),
        p if p.starts_with("/api/portfolio/") => vec![as_of],
        _ => Vec::new(),
    }
}

fn path_params(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| {
            json!({"name": name, "in": "path", "required": true,
                   "schema": {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}$"}})
        })
        .collect()
}

fn request_body(method: &str, path: &str) -> Option<Value> {
    let schema = match (method, path) {
        ("POST", "/api/customers/") => json!({"$ref": "#/components/schemas/CustomerRegistration"}),
        ("PATCH", "/api/customers/{id}") => json!({"$ref": "#/components/schemas/CustomerChange"}),
        ("POST", "/api/loans/apply") | ("POST", "/api/whatif") => json!({"oneOf": [
            {"$ref": "#/components/schemas/SeedApplication"},
            {"$ref": "#/components/schemas/LoanApplication"}
        ]}),
        ("POST", "/api/portfolio/stress-test") => json!({
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "pd_multiplier": {"type": "number", "minimum": 0.1, "maximum": 20},
                "lgd_add_bps": {"type": "integer", "minimum": 0, "maximum": 10000}
            }
        }),
        ("POST", "/api/models/{version}/promote") => json!({
            "type": "object",
            "properties": {"alias": {"type": "string", "enum": ["champion", "challenger"]}}
        }),
        _ => return None,
    };
    Some(json!({"required": true, "content": {"application/json": {"schema": schema}}}))
}

fn responses(method: &str, path: &str, public: bool) -> Value {
    let err = json!({"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    let ok_content = match path {
        "/metrics" => json!({"text/plain": {"schema": {"type": "string"}}}),
        "/" => json!({"text/html": {"schema": {"type": "string"}}}),
        "/assets/{file}" => {
            json!({"text/javascript": {"schema": {"type": "string"}}, "text/css": {"schema": {"type": "string"}}})
        }
        "/api/loans/apply" => {
            json!({"application/json": {"schema": {"$ref": "#/components/schemas/Decision"}}})
        }
        _ => json!({"application/json": {"schema": {"type": "object"}}}),
    };
    let mut r = Map::new();
    let ok_code = if (method, path) == ("POST", "/api/customers/") {
        "201"
    } else {
        "200"
    };
    r.insert(
        ok_code.into(),
        json!({"description": "success", "content": ok_content}),
    );
    if path == "/ready" {
        r.insert("503".into(), json!({"description": "not ready", "content": {"application/json": {"schema": {"type": "object"}}}}));
    }
    if path == "/api/loans/apply"
        || path == "/api/customers/" && method == "POST"
        || path == "/api/customers/{id}" && method == "PATCH"
    {
        r.insert("202".into(), json!({"description": "published; not yet decided or stored", "content": {"application/json": {"schema": {"type": "object"}}}}));
    }
    if !public {
        for code in [
            "400", "401", "403", "404", "409", "411", "413", "415", "422", "429", "503",
        ] {
            r.insert(code.into(), err.clone());
        }
    } else if path == "/assets/{file}" {
        r.insert("404".into(), err.clone());
    }
    Value::Object(r)
}

/// The document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for route in ROUTES {
        let public = route.roles.is_empty();
        let mut op = json!({
            "summary": route.summary,
            "operationId": format!("{}{}", route.method.to_lowercase(), route.path.replace(['/', '{', '}', '.', '-'], "_")),
            "responses": responses(route.method, route.path, public),
        });
        let params: Vec<Value> = path_params(route.path)
            .into_iter()
            .chain(query_params(route.path))
            .collect();
        if let Some(o) = op.as_object_mut() {
            if !params.is_empty() {
                o.insert("parameters".into(), params.into());
            }
            if let Some(b) = request_body(route.method, route.path) {
                o.insert("requestBody".into(), b);
            }
            if public {
                o.insert("security".into(), json!([]));
            } else {
                let roles: Vec<&str> = route.roles.iter().map(|r| r.as_str()).collect();
                o.insert("x-roles".into(), json!(roles));
            }
        }
        let entry = paths
            .entry(route.path.to_string())
            .or_insert_with(|| json!({}));
        if let Some(e) = entry.as_object_mut() {
            e.insert(route.method.to_lowercase(), op);
        }
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "credit-risk API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Loan applications decided in real time, the loan book with IRAC NPA and IFRS 9 figures, and the model registry. Amounts in responses are integer minor units."
        },
        "security": [{"ApiKey": []}, {"Bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "Bearer": {"type": "http", "scheme": "bearer"}
            },
            "schemas": {
                "Error": error_schema(),
                "SeedApplication": {
                    "type": "object",
                    "required": ["customer_id", "loan_amount", "loan_tenure_months", "interest_rate", "loan_purpose"],
                    "properties": {
                        "customer_id": {"oneOf": [{"type": "integer", "minimum": 0}, {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"}]},
                        "loan_amount": {"type": "number", "exclusiveMinimum": true, "minimum": 0, "multipleOf": 0.01, "description": "currency units"},
                        "loan_tenure_months": {"type": "integer", "minimum": 1, "maximum": 480},
                        "interest_rate": {"type": "number", "minimum": 0, "maximum": 100, "description": "percent a year"},
                        "loan_purpose": {"type": "string", "enum": ["Home Purchase", "Car Loan", "Personal", "Education", "Business", "Gold", "home", "auto", "personal", "education", "business", "gold"]},
                        "collateral_value": {"type": "number", "minimum": 0, "nullable": true},
                        "application_id": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
                        "channel": {"type": "string"}
                    }
                },
                "LoanApplication": {
                    "type": "object",
                    "required": ["customer_id", "applicant", "loan"],
                    "properties": {
                        "application_id": {"type": "string"},
                        "customer_id": {"type": "string"},
                        "channel": {"type": "string"},
                        "applicant": {"type": "object"},
                        "bureau": {"type": "object", "nullable": true},
                        "loan": {"type": "object"}
                    }
                },
                "CustomerRegistration": {
                    "type": "object",
                    "required": ["email", "phone", "employment_type"],
                    "properties": {
                        "customer_id": {"oneOf": [{"type": "integer", "minimum": 0}, {"type": "string"}]},
                        "full_name": {"type": "string", "pattern": NAME_PATTERN, "maxLength": 200},
                        "first_name": {"type": "string", "pattern": NAME_PATTERN, "maxLength": 200},
                        "last_name": {"type": "string", "pattern": NAME_PATTERN, "maxLength": 200},
                        "email": {"type": "string", "format": "email", "maxLength": 254},
                        "phone": {"type": "string", "pattern": PHONE_PATTERN},
                        "date_of_birth": {"type": "string", "format": "date"},
                        "age": {"type": "integer", "minimum": 18, "maximum": 100},
                        "employment_type": {"type": "string", "enum": ["salaried", "self_employed", "business", "retired", "other", "Employed", "Self-Employed", "Unemployed", "Student"]},
                        "employer_name": {"type": "string", "pattern": TEXT_PATTERN, "maxLength": 200},
                        "years_employed": {"type": "number", "minimum": 0, "maximum": 80},
                        "monthly_income": {"type": "number", "minimum": 0, "multipleOf": 0.01},
                        "annual_income": {"type": "number", "minimum": 0, "multipleOf": 0.01},
                        "existing_emi": {"type": "number", "minimum": 0, "multipleOf": 0.01},
                        "dependents": {"type": "integer", "minimum": 0, "maximum": 20},
                        "residence": {"type": "string", "enum": ["own", "rent", "mortgaged", "family"]},
                        "region": {"type": "string", "pattern": TEXT_PATTERN, "minLength": 1, "maxLength": 64},
                        "bureau": {"type": "object", "nullable": true}
                    }
                },
                "CustomerChange": {
                    "type": "object",
                    "additionalProperties": false,
                    "minProperties": 1,
                    "description": "The fields given replace the stored ones; the record before the change is kept in the customer's history.",
                    "properties": {
                        "reason": {"type": "string", "pattern": TEXT_PATTERN, "maxLength": 500},
                        "full_name": {"type": "string", "pattern": NAME_PATTERN, "maxLength": 200},
                        "email": {"type": "string", "format": "email", "maxLength": 254},
                        "phone": {"type": "string", "pattern": PHONE_PATTERN},
                        "employment_type": {"type": "string", "enum": ["salaried", "self_employed", "business", "retired", "other"]},
                        "employer_name": {"type": "string", "pattern": TEXT_PATTERN, "maxLength": 200},
                        "years_employed": {"type": "number", "minimum": 0, "maximum": 80},
                        "monthly_income": {"type": "number", "minimum": 0, "multipleOf": 0.01},
                        "existing_emi": {"type": "number", "minimum": 0, "multipleOf": 0.01},
                        "dependents": {"type": "integer", "minimum": 0, "maximum": 20},
                        "residence": {"type": "string", "enum": ["own", "rent", "mortgaged", "family"]},
                        "region": {"type": "string", "pattern": TEXT_PATTERN, "minLength": 1, "maxLength": 64}
                    }
                },
                "Decision": {
                    "type": "object",
                    "required": ["application_id", "credit_score", "risk_probability", "status", "recommendation"],
                    "properties": {
                        "application_id": {"type": "string"},
                        "customer_id": {"type": "string"},
                        "credit_score": {"type": "integer", "minimum": 300, "maximum": 850},
                        "risk_probability": {"type": "number", "minimum": 0, "maximum": 1},
                        "status": {"type": "string", "enum": ["approved", "rejected", "under_review"]},
                        "recommendation": {"type": "string"},
                        "decision": {"type": "string", "enum": ["APPROVE", "REFER", "DECLINE"]},
                        "grade": {"type": "string"},
                        "reasons": {"type": "array", "items": {"type": "object"}},
                        "model_version": {"type": "string"}
                    }
                }
            }
        }
    })
}
