-- Every tenant gets the unprivileged uid/gid its sandboxed instances run as. Existing tenants
-- get 200000, 200001, ... in creation order (the default range's start, ALVEARY_TENANT_UID_MIN).
ALTER TABLE "Tenant" ADD COLUMN     "runAsUid" INTEGER;

UPDATE "Tenant" t SET "runAsUid" = 199999 + n.rn
FROM (SELECT "id", row_number() OVER (ORDER BY "createdAt", "id") AS rn FROM "Tenant") n
WHERE t."id" = n."id";

ALTER TABLE "Tenant" ALTER COLUMN "runAsUid" SET NOT NULL;

-- CreateIndex
CREATE UNIQUE INDEX "Tenant_runAsUid_key" ON "Tenant"("runAsUid");
