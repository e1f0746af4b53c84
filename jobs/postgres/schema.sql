-- The serving backend's tables (docs/architecture.md, "The backend's tables"), as the embedded PostgreSQL and the
-- tests create them.
-- Idempotent: applied on every `retrain db start`, so it only ever adds what is missing.
CREATE TABLE IF NOT EXISTS users (
    id bigint PRIMARY KEY,
    allow_data_collection boolean NOT NULL
);

CREATE TABLE IF NOT EXISTS health_records (
    id bigserial PRIMARY KEY,
    user_id bigint REFERENCES users (id),
    record_type text NOT NULL,
    data text,
    prediction text,
    confidence double precision,
    model_version text,
    verified_outcome text NULL,
    created_at timestamptz
);

-- When the outcome was written: the pipeline uses an outcome only in runs whose interval ends after it, so
-- re-running an old date trains on the outcomes known then. Added by ALTER for databases created before it.
ALTER TABLE health_records ADD COLUMN IF NOT EXISTS verified_at timestamptz NULL;

-- Extraction bounds each run's window on created_at; analysts filter by model.
CREATE INDEX IF NOT EXISTS health_records_created_at_idx ON health_records (created_at);
CREATE INDEX IF NOT EXISTS health_records_record_type_idx ON health_records (record_type);
-- A weekly extract reads again only the records whose outcome was written since the previous run (sources.yml,
-- updated_at): a few thousand rows, found by this index instead of a scan of the table.
CREATE INDEX IF NOT EXISTS health_records_verified_at_idx ON health_records (verified_at);
