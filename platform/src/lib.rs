//! The stages wired together, for the `credit-risk` binary's commands and the demo.
//!
//! # Layout
//! - [`settings`]: the whole settings tree (defaults < file < environment).
//! - [`training`]: training from the book with its promotion announced, and its report as text.
//! - [`demo`]: the whole product in one process on the embedded defaults.

pub mod demo;
pub mod settings;
pub mod training;

pub use settings::Settings;
