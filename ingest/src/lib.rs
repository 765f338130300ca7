//! Applications into Kafka: validation, normalisation, dead-letter, loaders.
