-- CreateTable
CREATE TABLE "AuditRecord" (
    "id" BIGSERIAL NOT NULL,
    "at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "tenantId" UUID,
    "actorKind" TEXT NOT NULL,
    "actorId" UUID,
    "actorEmail" TEXT,
    "operator" BOOLEAN NOT NULL DEFAULT false,
    "credential" TEXT,
    "sourceIp" TEXT NOT NULL,
    "userAgent" TEXT,
    "door" TEXT NOT NULL,
    "action" TEXT NOT NULL,
    "target" TEXT,
    "request" JSONB NOT NULL DEFAULT '{}',
    "summary" TEXT NOT NULL DEFAULT '',
    "result" TEXT NOT NULL,
    "error" TEXT,
    "requestId" TEXT,

    CONSTRAINT "AuditRecord_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "AuditRecord_tenantId_id_idx" ON "AuditRecord"("tenantId", "id");

-- CreateIndex
CREATE INDEX "AuditRecord_at_idx" ON "AuditRecord"("at");

-- Append-only: rows are written once and never changed or removed.
CREATE FUNCTION "audit_record_append_only"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'the audit trail is append-only (% refused)', TG_OP;
END
$$;
CREATE TRIGGER "AuditRecord_append_only" BEFORE UPDATE OR DELETE ON "AuditRecord" FOR EACH ROW EXECUTE FUNCTION "audit_record_append_only"();
CREATE TRIGGER "AuditRecord_no_truncate" BEFORE TRUNCATE ON "AuditRecord" FOR EACH STATEMENT EXECUTE FUNCTION "audit_record_append_only"();
