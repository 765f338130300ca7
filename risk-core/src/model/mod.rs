//! Models: the artifact format shared by the trainer and the scorer, native tree-ensemble
//! inference and exact TreeSHAP.
//!
//! # Layout
//! - [`ensemble`]: XGBoost's JSON model read into flat trees; margin and PD.
//! - [`shap`]: exact path-dependent TreeSHAP.
//! - [`artifact`]: one file per model: the XGBoost model plus metadata.

pub mod artifact;
pub mod ensemble;
pub mod shap;

pub use artifact::{Artifact, LoadedModel};
pub use ensemble::{Ensemble, ModelError};
pub use shap::Explainer;
