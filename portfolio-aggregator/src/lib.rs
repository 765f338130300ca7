//! Loan book, delinquency, NPA, IFRS 9 and portfolio metrics in PostgreSQL.
