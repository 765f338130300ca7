//! Training job: dataset extraction, XGBoost training, evaluation, registry.
