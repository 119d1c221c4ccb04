-- 0020: deliveries reference their webhook without a foreign key; deleting
-- webhooks deletes their deliveries by a statement trigger (docs/delivery.md,
-- "Tables"; docs/PERFORMANCE.md, "One event to 10,000 webhooks").
--
-- The foreign key deliveries (webhook_id) -> webhooks (id) ran one check per
-- inserted delivery: a query (through SPI) that reads the webhook by primary
-- key and locks it FOR KEY SHARE, once per row even when every row names the
-- same few webhooks. An event fanned out to 10,000 webhooks ran 10,000 of
-- them inside its enqueue statement, each finding a lock its own transaction
-- already held: the enqueue locks every webhook it resolves FOR KEY SHARE
-- (kResolveWebhooks, in id order) before it inserts any delivery, and so does
-- every other writer of deliveries (the test ping locks its webhook first).
-- That lock is what keeps the webhook from being deleted before the
-- deliveries are committed; the per-row check repeated it.
--
-- Its ON DELETE CASCADE becomes the statement trigger below, as 0013 did for
-- events -> deliveries: a statement that deletes webhooks (the subscription
-- service's delete, or the cascade of a connection or a supplier) deletes
-- their deliveries once, after the statement, and their attempts through
-- deliveries_delete_attempts. A delete waits for the enqueues holding the
-- webhook (FOR UPDATE and DELETE conflict with FOR KEY SHARE); the trigger's
-- DELETE then runs on a snapshot taken after they committed, so it sees
-- their deliveries. Under REPEATABLE READ or SERIALIZABLE it would run on
-- the transaction's older snapshot and could leave the deliveries of an
-- enqueue that committed meanwhile behind, without a webhook (a row the
-- claim could lease but never send): the trigger refuses such a delete.
-- Every statement of the services runs READ COMMITTED.
--
-- Existing rows are unchanged: dropping a constraint rewrites and rechecks
-- nothing (ACCESS EXCLUSIVE on deliveries and webhooks for the catalog
-- change only). ordered_resources keeps its foreign key to webhooks.
CREATE FUNCTION octo_webhooks_delete_deliveries() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF current_setting('transaction_isolation') <> 'read committed' THEN
    RAISE EXCEPTION 'webhooks can only be deleted by a READ COMMITTED transaction'
      USING ERRCODE = 'object_not_in_prerequisite_state',
            HINT = 'Their deliveries are deleted by a trigger that must see enqueues committed meanwhile.';
  END IF;
  -- An array, not a join: each partition's (webhook_id, ...) index is read
  -- for the few ids, whatever the planner guesses of the transition table.
  DELETE FROM deliveries WHERE webhook_id = ANY (ARRAY(SELECT id FROM gone));
  RETURN NULL;
END;
$$;
CREATE TRIGGER webhooks_delete_deliveries AFTER DELETE ON webhooks
  REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION octo_webhooks_delete_deliveries();

DO $$
DECLARE
  fk name;
BEGIN
  FOR fk IN SELECT conname FROM pg_constraint
            WHERE conrelid = 'deliveries'::regclass AND contype = 'f'
              AND confrelid = 'webhooks'::regclass LOOP
    EXECUTE format('ALTER TABLE deliveries DROP CONSTRAINT %I', fk);
  END LOOP;
END;
$$;
