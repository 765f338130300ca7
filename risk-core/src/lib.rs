//! The credit-risk domain, pure: no I/O, no async, no C bindings.
//!
//! # Layout
//! - [`money`]: minor units, basis points, integer rounding.
//! - [`schedule`]: EMI and the amortisation schedule.
//! - [`ratios`]: FOIR, loan-to-income, LTV and the RBI housing LTV caps.
//! - [`dpd`]: payment allocation (oldest instalment first, prepayment, foreclosure) and days
//!   past due.
//! - [`book`]: the reference book: loans, payments and day-ends replayed in memory with these
//!   rules, against which the book's SQL day-end (`book::dayend`) is tested.
//! - [`irac`]: SMA/NPA classification, NPA ageing, upgrade rule, borrower-wise NPA.
//! - [`ifrs9`]: staging, lifetime PD, expected credit loss, LGD settings.
//! - [`provisioning`]: IRAC provisions by class.
//! - [`scoring`]: PDO score scaling and grades.
//! - [`policy`]: knock-out rules and PD cut-offs.
//! - [`metrics`]: AUC, Gini, KS, Brier and a constant-memory AUC.
//! - [`model`]: the artifact format, native tree-ensemble inference and exact TreeSHAP.
//! - [`features`]: feature set v1, shared by the scorer and the trainer.
//! - [`settings`]: every threshold above in one typed, deserialisable tree.
//!
//! Every policy value is a setting whose default is DOMAIN.md's.

pub mod book;
pub mod dpd;
pub mod features;
pub mod ifrs9;
pub mod irac;
pub mod metrics;
pub mod model;
pub mod money;
pub mod policy;
pub mod provisioning;
pub mod ratios;
pub mod schedule;
pub mod scoring;
pub mod settings;
