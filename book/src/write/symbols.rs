//! The schema symbols stored for enumerations (the text the Avro schemas use).

use schemas::{EmploymentType, Outcome, Residence};

/// The schema symbol of an employment type.
pub fn employment_symbol(e: EmploymentType) -> &'static str {
    match e {
        EmploymentType::Salaried => "salaried",
        EmploymentType::SelfEmployed => "self_employed",
        EmploymentType::Business => "business",
        EmploymentType::Retired => "retired",
        EmploymentType::Other => "other",
    }
}

/// The schema symbol of a residence status.
pub fn residence_symbol(r: Residence) -> &'static str {
    match r {
        Residence::Own => "own",
        Residence::Rent => "rent",
        Residence::Mortgaged => "mortgaged",
        Residence::Family => "family",
    }
}

/// The schema symbol of an outcome.
pub fn outcome_symbol(o: Outcome) -> &'static str {
    match o {
        Outcome::Approve => "APPROVE",
        Outcome::Refer => "REFER",
        Outcome::Decline => "DECLINE",
    }
}
