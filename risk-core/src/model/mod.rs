//! Models: the artifact format shared by the trainer and the scorer, native tree-ensemble
//! inference and exact TreeSHAP.
//!
//! # Layout
//! - [`ensemble`]: XGBoost's JSON model read into flat trees; margin and PD.
//! - [`flat`]: the same ensemble laid out for fast, branch-light scoring.
//! - [`shap`]: exact path-dependent TreeSHAP, a directory: the [`Explainer`] API (`mod.rs`),
//!   the recursive algorithm (`recursive.rs`), the per-leaf pattern tables (`tables.rs`) and
//!   the kernels that look a row's contributions up in them (`kernels.rs`).
//! - [`artifact`]: one file per model: the XGBoost model plus metadata.

pub mod artifact;
pub mod ensemble;
pub mod flat;
pub mod shap;

pub use artifact::{Artifact, LoadedModel};
pub use ensemble::{Ensemble, ModelError};
pub use flat::FlatEnsemble;
pub use shap::Explainer;
