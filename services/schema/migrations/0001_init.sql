-- 0001: suppliers, connections, API keys and webhooks.
--
-- The constraints here are the last line of defence: the service validates
-- every field first, but a row that breaks a rule cannot be stored whoever
-- writes it. gen_random_uuid() is built into PostgreSQL 13+.

CREATE TABLE suppliers (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name        text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
  -- The supplier's OCTO API endpoint: an absolute http(s) URL.
  endpoint    text NOT NULL CHECK (octet_length(endpoint) <= 2048 AND endpoint ~* '^https?://[^/?#[:space:]]+'),
  -- OCTO's Supplier.contact: only these four keys, each a bounded string.
  contact     jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (
                jsonb_typeof(contact) = 'object'
                AND contact - ARRAY['website', 'email', 'telephone', 'address'] = '{}'::jsonb
                AND NOT jsonb_path_exists(contact, '$.* ? (@.type() != "string")')
                AND octet_length(contact::text) <= 4096),
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  CHECK (updated_at >= created_at)
);
CREATE INDEX suppliers_list_idx ON suppliers (created_at, id);

CREATE TABLE connections (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  supplier_id   uuid NOT NULL REFERENCES suppliers (id) ON DELETE CASCADE,
  name          text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
  max_webhooks  integer NOT NULL CHECK (max_webhooks BETWEEN 1 AND 100000),
  created_at    timestamptz NOT NULL DEFAULT now(),
  UNIQUE (supplier_id, name)
);
CREATE INDEX connections_list_idx ON connections (supplier_id, created_at, id);

CREATE TABLE api_keys (
  id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  connection_id  uuid NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
  name           text NOT NULL DEFAULT '' CHECK (char_length(name) <= 200),
  -- The first characters of the key, to recognise it; never the whole key.
  prefix         text NOT NULL CHECK (char_length(prefix) BETWEEN 1 AND 16),
  -- SHA-256 of the bearer key; the key itself is never stored.
  key_hash       bytea NOT NULL UNIQUE CHECK (octet_length(key_hash) = 32),
  created_at     timestamptz NOT NULL DEFAULT now(),
  revoked_at     timestamptz CHECK (revoked_at >= created_at)
);
CREATE INDEX api_keys_list_idx ON api_keys (connection_id, created_at, id);

CREATE TABLE webhooks (
  id                    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  connection_id         uuid NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
  event                 text NOT NULL CHECK (
                          event IN ('booking_update', 'order_update', 'availability_update', 'product_update')),
  url                   text NOT NULL CHECK (
                          octet_length(url) BETWEEN 1 AND 2048 AND url ~* '^https?://[^/?#[:space:]]+'
                          AND url !~ '[[:space:][:cntrl:]]'),
  retry_on_error        boolean NOT NULL DEFAULT true,
  use_contact_language  boolean NOT NULL DEFAULT true,
  -- Extra request headers: an object of string values.
  headers               jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (
                          jsonb_typeof(headers) = 'object'
                          AND NOT jsonb_path_exists(headers, '$.* ? (@.type() != "string")')
                          AND octet_length(headers::text) <= 65536),
  -- OCTO capability ids: an array of strings.
  capabilities          jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (
                          jsonb_typeof(capabilities) = 'array'
                          AND NOT jsonb_path_exists(capabilities, '$[*] ? (@.type() != "string")')
                          AND jsonb_array_length(capabilities) <= 50),
  -- Standard Webhooks signing secret: "whsec_" + base64 of 32 bytes.
  secret                text NOT NULL CHECK (secret ~ '^whsec_[A-Za-z0-9+/]{43}=$'),
  status                text NOT NULL DEFAULT 'enabled' CHECK (status IN ('enabled', 'disabled')),
  disabled_reason       text CHECK (char_length(disabled_reason) <= 1000),
  disabled_at           timestamptz,
  created_at            timestamptz NOT NULL DEFAULT now(),
  updated_at            timestamptz NOT NULL DEFAULT now(),
  CHECK ((status = 'disabled') = (disabled_at IS NOT NULL)),
  CHECK (status = 'disabled' OR disabled_reason IS NULL),
  CHECK (updated_at >= created_at)
);
-- Keyset pagination of a connection's webhooks, oldest first.
CREATE INDEX webhooks_list_idx ON webhooks (connection_id, created_at, id);

-- The per-connection cap on webhooks, enforced here so that concurrent
-- creations cannot overshoot it: each insert (or move to another connection)
-- first locks the connection row, so inserts into one connection serialise and
-- each count sees the rows committed before it. FOR NO KEY UPDATE conflicts
-- with itself like FOR UPDATE but not with the FOR KEY SHARE locks that
-- foreign-key checks take, so creating API keys is not blocked meanwhile.
-- Raises SQLSTATE OW001, which the service answers with RESOURCE_EXHAUSTED.
CREATE FUNCTION webhooks_enforce_cap() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  cap integer;
  used integer;
BEGIN
  IF TG_OP = 'UPDATE' AND NEW.connection_id = OLD.connection_id THEN
    RETURN NEW;
  END IF;
  SELECT max_webhooks INTO cap FROM connections WHERE id = NEW.connection_id FOR NO KEY UPDATE;
  IF NOT FOUND THEN
    RETURN NEW;  -- the foreign key reports the missing connection
  END IF;
  SELECT count(*) INTO used FROM webhooks WHERE connection_id = NEW.connection_id;
  IF used >= cap THEN
    RAISE EXCEPTION 'connection % already has its maximum of % webhooks', NEW.connection_id, cap
      USING ERRCODE = 'OW001';
  END IF;
  RETURN NEW;
END;
$$;

CREATE TRIGGER webhooks_enforce_cap
  BEFORE INSERT OR UPDATE OF connection_id ON webhooks
  FOR EACH ROW EXECUTE FUNCTION webhooks_enforce_cap();
