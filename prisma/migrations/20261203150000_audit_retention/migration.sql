-- Audit retention: rows older than the configured retention are removed by the leader's
-- housekeeping, through one privileged path only. The trigger still refuses every UPDATE,
-- TRUNCATE and plain DELETE; it lets a DELETE through only inside audit_record_expire(), and
-- only of rows older than the cutoff that function was called with.
CREATE OR REPLACE FUNCTION "audit_record_append_only"() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  cutoff text := current_setting('alveary.audit_expire_before', true);
BEGIN
  IF TG_OP = 'DELETE' AND cutoff IS NOT NULL AND cutoff <> '' AND OLD."at" < cutoff::timestamp(3) THEN
    RETURN OLD;
  END IF;
  RAISE EXCEPTION 'the audit trail is append-only (% refused)', TG_OP;
END
$$;

-- Deletes at most max_rows rows older than cutoff (oldest first); returns how many it deleted.
CREATE FUNCTION "audit_record_expire"(cutoff timestamp(3), max_rows integer) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  n integer;
BEGIN
  PERFORM set_config('alveary.audit_expire_before', cutoff::text, true);
  DELETE FROM "AuditRecord" WHERE "id" IN (SELECT "id" FROM "AuditRecord" WHERE "at" < cutoff ORDER BY "id" LIMIT max_rows);
  GET DIAGNOSTICS n = ROW_COUNT;
  PERFORM set_config('alveary.audit_expire_before', '', true);
  RETURN n;
END
$$;
