//! Request handlers, one module per resource. Each takes the shared [`Edge`](crate::Edge), the
//! verified caller and the parsed input, and returns a reply or an [`ApiError`].

pub mod customers;
pub mod loans;
pub mod models;
pub mod portfolio;
pub mod risk;
pub mod system;

use warp::http::StatusCode;
use warp::Reply;

use crate::error::ApiError;

/// A handler's result.
pub type Answer = Result<warp::reply::Response, ApiError>;

/// `value` as JSON with `status`.
pub fn json<T: serde::Serialize>(value: &T, status: StatusCode) -> warp::reply::Response {
    warp::reply::with_status(warp::reply::json(value), status).into_response()
}

/// `value` as JSON, 200.
pub fn ok<T: serde::Serialize>(value: &T) -> Answer {
    Ok(json(value, StatusCode::OK))
}
