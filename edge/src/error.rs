//! Errors as JSON `{error, message, details}` with the right status; one `recover` for every
//! rejection, so no route answers in another shape.

use std::convert::Infallible;

use serde::Serialize;
use warp::http::StatusCode;
use warp::{Rejection, Reply};

/// An API error: the status, a stable machine code, a sentence, and optional details (such as
/// the offending field).
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable code clients can switch on (`invalid_field`, `unauthorized` …).
    pub code: &'static str,
    /// What went wrong, for a human.
    pub message: String,
    /// Structured details, e.g. `{"field": "loan_amount"}`.
    pub details: serde_json::Value,
    /// Seconds to wait before retrying (429).
    pub retry_after: Option<u64>,
}

impl warp::reject::Reject for ApiError {}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    message: &'a str,
    details: &'a serde_json::Value,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: serde_json::Value::Null,
            retry_after: None,
        }
    }

    /// 400: the request cannot be read.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 422: a field has a value we cannot accept; names the field.
    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", message);
        e.details = serde_json::json!({ "field": field });
        e
    }

    /// 401: no key, or a key we do not know.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid API key is required (header `Authorization: Bearer <key>` or `X-API-Key`)",
        )
    }

    /// 403: the key's role may not do this.
    pub fn forbidden(role: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("the role `{role}` may not use this endpoint"),
        )
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 409: the request conflicts with the current state.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// 429 with Retry-After.
    pub fn rate_limited(retry_after: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many requests for this API key",
        );
        e.retry_after = Some(retry_after.max(1));
        e
    }

    /// 503: a dependency (Kafka, PostgreSQL, the model) is not available; retry later.
    pub fn unavailable(message: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message);
        e.retry_after = Some(1);
        e
    }

    /// 500: logged with its cause; the client sees no internals.
    pub fn internal(context: &str, error: &dyn std::fmt::Display) -> Self {
        tracing::error!(%error, context, "Request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; it has been logged",
        )
    }

    /// The JSON reply.
    pub fn reply(&self) -> warp::reply::Response {
        let body = Body {
            error: self.code,
            message: &self.message,
            details: &self.details,
        };
        let mut res =
            warp::reply::with_status(warp::reply::json(&body), self.status).into_response();
        if let Some(s) = self.retry_after {
            if let Ok(v) = warp::http::HeaderValue::from_str(&s.to_string()) {
                res.headers_mut().insert("retry-after", v);
            }
        }
        res
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                Self::unavailable("the database is not available")
            }
            other => Self::internal("database", &other),
        }
    }
}

impl From<book::queries::QueryError> for ApiError {
    fn from(e: book::queries::QueryError) -> Self {
        use book::queries::QueryError;
        match e {
            QueryError::NoClosedDay(_) => Self::not_found(e.to_string()),
            QueryError::Database(d) => d.into(),
            QueryError::Snapshot { .. } | QueryError::Vintage(_) => {
                Self::internal("the portfolio snapshot", &e)
            }
        }
    }
}

impl From<book::registry::RegistryError> for ApiError {
    fn from(e: book::registry::RegistryError) -> Self {
        use book::registry::RegistryError;
        match e {
            RegistryError::NotFound(_) => Self::not_found(e.to_string()),
            RegistryError::FeatureSet { .. } => Self::conflict(e.to_string()),
            RegistryError::Database(d) => d.into(),
            RegistryError::Artifact { .. } => Self::internal("model registry", &e),
        }
    }
}

/// Turn a failed request into a rejection.
pub fn reject(e: ApiError) -> Rejection {
    warp::reject::custom(e)
}

/// Map every rejection to the JSON error shape.
pub async fn recover(rejection: Rejection) -> Result<warp::reply::Response, Infallible> {
    let e = if let Some(e) = rejection.find::<ApiError>() {
        e.clone()
    } else if rejection.is_not_found() {
        ApiError::not_found("no such endpoint")
    } else if rejection.find::<warp::reject::PayloadTooLarge>().is_some() {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the request body is larger than this endpoint accepts",
        )
    } else if let Some(e) = rejection.find::<warp::filters::body::BodyDeserializeError>() {
        body_error(&e.to_string())
    } else if let Some(e) = rejection.find::<warp::reject::InvalidQuery>() {
        ApiError::bad_request(format!("invalid query string: {e}"))
    } else if rejection
        .find::<warp::reject::UnsupportedMediaType>()
        .is_some()
    {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as application/json",
        )
    } else if rejection.find::<warp::reject::LengthRequired>().is_some() {
        ApiError::new(
            StatusCode::LENGTH_REQUIRED,
            "length_required",
            "a Content-Length header is required",
        )
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this endpoint does not accept that method",
        )
    } else if rejection.find::<warp::reject::MissingHeader>().is_some()
        || rejection.find::<warp::reject::InvalidHeader>().is_some()
    {
        ApiError::bad_request("a required header is missing or invalid")
    } else {
        tracing::warn!(?rejection, "Unhandled rejection");
        ApiError::internal("rejection", &"unhandled rejection")
    };
    Ok(e.reply())
}

/// A JSON body serde could not read: 400 for malformed JSON, 422 naming the field otherwise.
fn body_error(message: &str) -> ApiError {
    // serde_json says e.g. "missing field `loan_amount` at line 1 column 20" or
    // "invalid type: string \"x\", expected u64 at line …"; name the field when it does.
    let field = message
        .split('`')
        .nth(1)
        .filter(|f| !f.is_empty() && f.len() < 64)
        .map(str::to_string);
    let clean = message
        .trim_start_matches("Request body deserialize error: ")
        .to_string();
    if message.contains("EOF while parsing")
        || message.contains("expected value")
        || message.contains("key must be a string")
        || message.contains("trailing characters")
    {
        return ApiError::bad_request(format!("the body is not valid JSON: {clean}"));
    }
    let mut e = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", clean);
    e.details = serde_json::json!({ "field": field });
    e
}
