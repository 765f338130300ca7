//! Kafka scorer: features, model, policy, decisions.
