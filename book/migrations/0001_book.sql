-- The loan book. One writer: the portfolio aggregator. Money is bigint minor units, rates are
-- basis points, business dates are `date`.

CREATE DOMAIN entity_id AS text CHECK (VALUE ~ '^[A-Za-z0-9_-]{1,64}$');

CREATE TABLE customers (
    customer_id      entity_id PRIMARY KEY,
    registered_at    timestamptz NOT NULL,
    full_name        text NOT NULL,
    email            text NOT NULL,
    phone            text NOT NULL,
    date_of_birth    date,
    age              integer CHECK (age BETWEEN 0 AND 150),
    employment_type  text NOT NULL
        CHECK (employment_type IN ('salaried', 'self_employed', 'business', 'retired', 'other')),
    employer_name    text,
    years_employed   real NOT NULL CHECK (years_employed >= 0),
    monthly_income   bigint NOT NULL CHECK (monthly_income >= 0),
    existing_emi     bigint NOT NULL CHECK (existing_emi >= 0),
    dependents       integer NOT NULL CHECK (dependents >= 0),
    residence        text NOT NULL CHECK (residence IN ('own', 'rent', 'mortgaged', 'family')),
    region           text NOT NULL,
    bureau           jsonb
);

CREATE TABLE applications (
    application_id    entity_id PRIMARY KEY,
    customer_id       entity_id NOT NULL,
    submitted_at      timestamptz NOT NULL,
    channel           text NOT NULL,
    purpose           text NOT NULL
        CHECK (purpose IN ('home', 'auto', 'personal', 'education', 'business', 'gold')),
    amount            bigint NOT NULL CHECK (amount > 0),
    tenure_months     integer NOT NULL CHECK (tenure_months > 0),
    interest_rate_bps integer NOT NULL CHECK (interest_rate_bps BETWEEN 0 AND 10000),
    collateral_value  bigint CHECK (collateral_value >= 0),
    -- The application as submitted (no personal data travels in applications); the trainer
    -- recomputes features from it with the scorer's code.
    payload           jsonb NOT NULL
);
CREATE INDEX applications_customer ON applications (customer_id);
CREATE INDEX applications_submitted ON applications (submitted_at);

CREATE TABLE decisions (
    application_id      entity_id PRIMARY KEY,
    customer_id         entity_id NOT NULL,
    decided_at          timestamptz NOT NULL,
    model_version       text NOT NULL,
    feature_set_version text NOT NULL,
    pd                  double precision NOT NULL CHECK (pd >= 0 AND pd <= 1),
    score               integer NOT NULL CHECK (score BETWEEN 300 AND 850),
    score_clamped       boolean NOT NULL,
    grade               text NOT NULL CHECK (grade ~ '^[A-Z]$'),
    decision            text NOT NULL CHECK (decision IN ('APPROVE', 'REFER', 'DECLINE')),
    rule_hits           text[] NOT NULL,
    emi                 bigint NOT NULL CHECK (emi >= 0),
    foir                double precision NOT NULL,
    ltv                 double precision,
    challenger_version  text,
    challenger_pd       double precision CHECK (challenger_pd >= 0 AND challenger_pd <= 1)
);
CREATE INDEX decisions_customer ON decisions (customer_id, decided_at);
CREATE INDEX decisions_decided ON decisions (decided_at);

CREATE TABLE decision_reasons (
    application_id entity_id NOT NULL REFERENCES decisions ON DELETE CASCADE,
    rank           smallint NOT NULL CHECK (rank >= 1),
    code           text NOT NULL,
    feature        text NOT NULL,
    value          double precision,
    points         double precision NOT NULL,
    PRIMARY KEY (application_id, rank)
);

CREATE TABLE loans (
    loan_id           entity_id PRIMARY KEY,
    application_id    entity_id NOT NULL UNIQUE,
    customer_id       entity_id NOT NULL,
    principal         bigint NOT NULL CHECK (principal > 0),
    interest_rate_bps integer NOT NULL CHECK (interest_rate_bps BETWEEN 0 AND 10000),
    tenure_months     integer NOT NULL CHECK (tenure_months > 0),
    emi               bigint NOT NULL CHECK (emi >= 0),
    instalments       integer NOT NULL CHECK (instalments > 0),
    disbursed_on      date NOT NULL,
    first_due_on      date NOT NULL CHECK (first_due_on >= disbursed_on),
    maturity_on       date NOT NULL CHECK (maturity_on >= first_due_on),
    collateral_value  bigint CHECK (collateral_value >= 0),
    vintage           date NOT NULL GENERATED ALWAYS AS (date_trunc('month', disbursed_on::timestamp)::date) STORED,
    -- Filled from the application, its decision and the customer as they arrive.
    purpose           text CHECK (purpose IN ('home', 'auto', 'personal', 'education', 'business', 'gold')),
    region            text,
    grade             text,
    origination_pd    double precision CHECK (origination_pd >= 0 AND origination_pd <= 1)
);
CREATE INDEX loans_customer ON loans (customer_id);
CREATE INDEX loans_vintage ON loans (vintage);
CREATE INDEX loans_incomplete ON loans (loan_id)
    WHERE purpose IS NULL OR region IS NULL OR grade IS NULL OR origination_pd IS NULL;

CREATE TABLE instalments (
    loan_id        entity_id NOT NULL REFERENCES loans ON DELETE CASCADE,
    seq            integer NOT NULL CHECK (seq >= 1),
    due_on         date NOT NULL,
    principal      bigint NOT NULL CHECK (principal >= 0),
    interest       bigint NOT NULL CHECK (interest >= 0),
    paid_principal bigint NOT NULL DEFAULT 0 CHECK (paid_principal BETWEEN 0 AND principal),
    paid_interest  bigint NOT NULL DEFAULT 0 CHECK (paid_interest BETWEEN 0 AND interest),
    settled_on     date,
    PRIMARY KEY (loan_id, seq)
);
CREATE INDEX instalments_unpaid ON instalments (loan_id, seq)
    WHERE paid_principal + paid_interest < principal + interest;

CREATE TABLE payments (
    payment_id     entity_id PRIMARY KEY,
    loan_id        entity_id NOT NULL REFERENCES loans ON DELETE CASCADE,
    amount         bigint NOT NULL CHECK (amount > 0),
    paid_on        date NOT NULL,
    to_interest    bigint NOT NULL CHECK (to_interest >= 0),
    to_principal   bigint NOT NULL CHECK (to_principal >= 0),
    surplus        bigint NOT NULL CHECK (surplus >= 0),
    CHECK (to_interest + to_principal + surplus = amount)
);
CREATE INDEX payments_loan ON payments (loan_id, paid_on);

CREATE TABLE loan_status (
    loan_id               entity_id PRIMARY KEY REFERENCES loans ON DELETE CASCADE,
    customer_id           entity_id NOT NULL,
    state                 text NOT NULL CHECK (state IN ('ACTIVE', 'CLOSED', 'WRITTEN_OFF')),
    outstanding_principal bigint NOT NULL CHECK (outstanding_principal >= 0),
    paid_principal        bigint NOT NULL DEFAULT 0 CHECK (paid_principal >= 0),
    paid_interest         bigint NOT NULL DEFAULT 0 CHECK (paid_interest >= 0),
    surplus               bigint NOT NULL DEFAULT 0 CHECK (surplus >= 0),
    next_unpaid_seq       integer,
    next_unpaid_due_on    date,
    last_paid_on          date,
    dpd                   integer NOT NULL DEFAULT 0 CHECK (dpd >= 0),
    max_dpd               integer NOT NULL DEFAULT 0 CHECK (max_dpd >= 0),
    arrears               bigint NOT NULL DEFAULT 0 CHECK (arrears >= 0),
    arrears_interest      bigint NOT NULL DEFAULT 0 CHECK (arrears_interest >= 0),
    -- Interest recognised as receivable; frozen while the loan is NPA (accrual stops).
    accrued_interest      bigint NOT NULL DEFAULT 0 CHECK (accrued_interest >= 0),
    -- Interest fallen due while NPA, held in suspense instead of being recognised.
    interest_suspended    bigint NOT NULL DEFAULT 0 CHECK (interest_suspended >= 0),
    own_npa_since         date,
    asset_class           text NOT NULL DEFAULT 'STANDARD'
        CHECK (asset_class IN ('STANDARD', 'SMA0', 'SMA1', 'SMA2', 'SUBSTANDARD', 'D1', 'D2', 'D3', 'LOSS')),
    npa_since             date,
    stage                 smallint NOT NULL DEFAULT 1 CHECK (stage IN (1, 2, 3)),
    current_pd            double precision CHECK (current_pd >= 0 AND current_pd <= 1),
    provision             bigint NOT NULL DEFAULT 0 CHECK (provision >= 0),
    ecl                   bigint NOT NULL DEFAULT 0 CHECK (ecl >= 0),
    first_dpd30_on        date,
    first_dpd60_on        date,
    first_dpd90_on        date,
    month_start_bucket    text,
    month_start_balance   bigint,
    written_off_on        date,
    written_off_amount    bigint CHECK (written_off_amount >= 0),
    loss_on               date,
    closed_on             date,
    CHECK ((asset_class IN ('SUBSTANDARD', 'D1', 'D2', 'D3')) = (npa_since IS NOT NULL) OR asset_class = 'LOSS')
);
CREATE INDEX loan_status_customer ON loan_status (customer_id);
CREATE INDEX loan_status_open ON loan_status (loan_id) WHERE state = 'ACTIVE';

CREATE TABLE status_history (
    loan_id       entity_id NOT NULL REFERENCES loans ON DELETE CASCADE,
    business_date date NOT NULL,
    from_class    text NOT NULL,
    to_class      text NOT NULL,
    from_stage    smallint NOT NULL CHECK (from_stage IN (1, 2, 3)),
    to_stage      smallint NOT NULL CHECK (to_stage IN (1, 2, 3)),
    dpd           integer NOT NULL CHECK (dpd >= 0),
    outstanding   bigint NOT NULL CHECK (outstanding >= 0),
    PRIMARY KEY (loan_id, business_date)
);
CREATE INDEX status_history_date ON status_history (business_date);

-- Business days: which partitions of the events topic have delivered the day-end tick, and
-- when the day-end ran.
CREATE TABLE business_days (
    business_date date PRIMARY KEY,
    partitions    integer NOT NULL CHECK (partitions > 0),
    ticks         integer[] NOT NULL DEFAULT '{}',
    closed_at     timestamptz,
    loans_aged    integer,
    seconds       double precision
);

CREATE TABLE portfolio_daily (
    business_date        date PRIMARY KEY,
    total_loans          bigint NOT NULL,
    active_loans         bigint NOT NULL,
    closed_loans         bigint NOT NULL,
    written_off_loans    bigint NOT NULL,
    defaulted_loans      bigint NOT NULL,
    total_disbursed      bigint NOT NULL CHECK (total_disbursed >= 0),
    outstanding          bigint NOT NULL CHECK (outstanding >= 0),
    npa_loans            bigint NOT NULL,
    npa_amount           bigint NOT NULL CHECK (npa_amount >= 0),
    npa_provisions       bigint NOT NULL CHECK (npa_provisions >= 0),
    provisions           bigint NOT NULL CHECK (provisions >= 0),
    ecl                  bigint NOT NULL CHECK (ecl >= 0),
    par30                bigint NOT NULL CHECK (par30 >= 0),
    par90                bigint NOT NULL CHECK (par90 >= 0),
    written_off_amount   bigint NOT NULL CHECK (written_off_amount >= 0),
    collected            bigint NOT NULL CHECK (collected >= 0),
    decided              bigint NOT NULL,
    approved             bigint NOT NULL,
    referred             bigint NOT NULL,
    declined             bigint NOT NULL,
    by_class             jsonb NOT NULL,
    by_stage             jsonb NOT NULL,
    by_dpd_bucket        jsonb NOT NULL,
    by_purpose           jsonb NOT NULL,
    by_region            jsonb NOT NULL,
    by_grade             jsonb NOT NULL,
    by_status            jsonb NOT NULL,
    by_vintage           jsonb NOT NULL,
    computed_at          timestamptz NOT NULL DEFAULT now()
);

-- Repayment counters by value date (maintained as payments are applied).
CREATE TABLE repayment_daily (
    paid_on              date PRIMARY KEY,
    payments             bigint NOT NULL DEFAULT 0,
    amount               bigint NOT NULL DEFAULT 0,
    to_interest          bigint NOT NULL DEFAULT 0,
    to_principal         bigint NOT NULL DEFAULT 0,
    surplus              bigint NOT NULL DEFAULT 0,
    instalments_settled  bigint NOT NULL DEFAULT 0,
    settled_on_time      bigint NOT NULL DEFAULT 0
);

-- Vintage cells: loans of an origination month first reaching 30+/60+/90+ DPD at a month on
-- book, by the business date it happened.
CREATE TABLE vintage_hits (
    vintage       date NOT NULL,
    threshold     smallint NOT NULL CHECK (threshold IN (30, 60, 90)),
    mob           integer NOT NULL CHECK (mob >= 0),
    business_date date NOT NULL,
    loans         bigint NOT NULL,
    PRIMARY KEY (vintage, threshold, mob, business_date)
);

-- Month-over-month bucket transitions, recorded at the first day-end of a new month.
CREATE TABLE roll_rates (
    month       date NOT NULL,
    from_bucket text NOT NULL,
    to_bucket   text NOT NULL,
    loans       bigint NOT NULL,
    balance     bigint NOT NULL,
    PRIMARY KEY (month, from_bucket, to_bucket)
);

-- Every loan event id applied, so a replayed event changes nothing.
CREATE TABLE applied_events (
    event_id entity_id PRIMARY KEY
);

-- Exactly-once: the next offset to apply per consumer group and partition, written in the same
-- transaction as the changes the messages before it made.
CREATE TABLE consumer_offsets (
    consumer_group text NOT NULL,
    topic          text NOT NULL,
    partition      integer NOT NULL CHECK (partition >= 0),
    next_offset    bigint NOT NULL CHECK (next_offset >= 0),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, partition)
);

-- Current PD per customer from the latest scored application (a behavioural signal for the
-- IFRS 9 PD-ratio trigger).
CREATE TABLE customer_risk (
    customer_id entity_id PRIMARY KEY,
    pd          double precision NOT NULL CHECK (pd >= 0 AND pd <= 1),
    decided_at  timestamptz NOT NULL
);

-- Model registry (written by the trainer and the admin API).
CREATE TABLE models (
    model_version       text PRIMARY KEY,
    model_name          text NOT NULL,
    feature_set_version text NOT NULL,
    artifact_uri        text NOT NULL,
    artifact            jsonb,
    metrics             jsonb NOT NULL,
    comparison          jsonb,
    training_window     jsonb,
    rows                bigint NOT NULL CHECK (rows >= 0),
    data_hash           text NOT NULL,
    alias               text CHECK (alias IN ('champion', 'challenger')),
    created_by          text NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX models_alias ON models (model_name, alias) WHERE alias IS NOT NULL;

CREATE TABLE api_keys (
    key_id      text PRIMARY KEY,
    key_hash    text NOT NULL UNIQUE,
    role        text NOT NULL CHECK (role IN ('originator', 'analyst', 'admin')),
    label       text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

CREATE TABLE audit_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,
    action      text NOT NULL,
    subject     text NOT NULL,
    details     jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at ON audit_log (at);

CREATE RULE audit_log_no_update AS ON UPDATE TO audit_log DO INSTEAD NOTHING;
CREATE RULE audit_log_no_delete AS ON DELETE TO audit_log DO INSTEAD NOTHING;
