/**
 * Attaches the volumes of newly placed instances to their node, in the placing transaction:
 * creates each (app, volume, ordinal) volume on first use, and bumps its epoch whenever the
 * attachment changes (another node or another instance of the ordinal), so an agent still
 * holding the old attachment is fenced off. Re-placing the same instance on the same node
 * keeps the epoch. `ids` is SQL for a uuid[] (the plan applier sends it along with its write,
 * as a literal).
 */
export const attachVolumesSql = (ids: string) =>
  `WITH placed AS (
       SELECT i.id, i."tenantId", i."appId", i.ordinal, i."nodeId", a.volumes
       FROM "Instance" i JOIN "App" a ON a.id = i."appId"
       WHERE i.id = ANY(${ids}) AND i."nodeId" IS NOT NULL AND jsonb_array_length(a.volumes) > 0
     )
     INSERT INTO "Volume" (id, "tenantId", "appId", name, ordinal, driver, "sizeMb", "mountPath", "nodeId", epoch, "attachedInstanceId")
     SELECT gen_random_uuid(), p."tenantId", p."appId", v->>'name', p.ordinal, (v->>'driver')::"VolumeDriver", (v->>'sizeMb')::int, v->>'mountPath', p."nodeId", 1, p.id
     FROM placed p, jsonb_array_elements(p.volumes) AS v
     ON CONFLICT ("appId", name, ordinal) DO UPDATE
       SET "nodeId" = EXCLUDED."nodeId", "attachedInstanceId" = EXCLUDED."attachedInstanceId", epoch = "Volume".epoch + 1
       WHERE "Volume"."nodeId" IS DISTINCT FROM EXCLUDED."nodeId" OR "Volume"."attachedInstanceId" IS DISTINCT FROM EXCLUDED."attachedInstanceId"`

