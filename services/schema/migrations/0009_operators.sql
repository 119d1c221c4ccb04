-- 0009: operators, a supplier's staff who use the web dashboard, and their
-- sessions. Passwords and session tokens are generated (high entropy) and
-- stored only as SHA-256 hashes, like API keys.

CREATE TABLE operators (
  id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  supplier_id    uuid NOT NULL REFERENCES suppliers (id) ON DELETE CASCADE,
  name           text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9._@+-]{3,100}$'),
  password_hash  bytea NOT NULL CHECK (octet_length(password_hash) = 32),
  created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX operators_supplier_idx ON operators (supplier_id);

CREATE TABLE operator_sessions (
  token_hash   bytea PRIMARY KEY CHECK (octet_length(token_hash) = 32),
  operator_id  uuid NOT NULL REFERENCES operators (id) ON DELETE CASCADE,
  csrf_token   text NOT NULL CHECK (csrf_token ~ '^[A-Za-z0-9_-]{43}$'),
  created_at   timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz NOT NULL,
  CHECK (expires_at > created_at)
);
CREATE INDEX operator_sessions_operator_idx ON operator_sessions (operator_id);
CREATE INDEX operator_sessions_expires_idx ON operator_sessions (expires_at);

-- The dashboard's 24-hour health of a webhook reads its recent attempts.
CREATE INDEX delivery_attempts_started_idx ON delivery_attempts (started_at);
