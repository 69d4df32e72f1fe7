-- CreateEnum
CREATE TYPE "RolloutState" AS ENUM ('progressing', 'succeeded', 'rolled_back', 'superseded', 'failed');

-- CreateEnum
CREATE TYPE "RolloutKind" AS ENUM ('update', 'rollback', 'auto_rollback');

-- CreateEnum
CREATE TYPE "LbProtocol" AS ENUM ('http', 'tcp');

-- CreateEnum
CREATE TYPE "LbAlgorithm" AS ENUM ('roundrobin', 'leastconn');

-- AlterTable
ALTER TABLE "App" ADD COLUMN     "maxSurge" INTEGER NOT NULL DEFAULT 1,
ADD COLUMN     "progressDeadlineSeconds" INTEGER NOT NULL DEFAULT 120,
ADD COLUMN     "revision" INTEGER NOT NULL DEFAULT 1;

-- AlterTable
ALTER TABLE "Instance" ADD COLUMN     "drainGenerations" JSONB,
ADD COLUMN     "drainingSince" TIMESTAMP(3),
ADD COLUMN     "revision" INTEGER NOT NULL DEFAULT 1;

-- AlterTable
ALTER TABLE "Node" ADD COLUMN     "lbDriver" TEXT,
ADD COLUMN     "loadBalancing" BOOLEAN NOT NULL DEFAULT false;

-- AlterTable
ALTER TABLE "Tenant" ADD COLUMN     "quotaLoadBalancers" INTEGER NOT NULL DEFAULT 5;

-- CreateTable
CREATE TABLE "AppRevision" (
    "id" UUID NOT NULL,
    "appId" UUID NOT NULL,
    "revision" INTEGER NOT NULL,
    "spec" JSONB NOT NULL,
    "templateHash" TEXT NOT NULL,
    "cause" TEXT NOT NULL,
    "createdById" UUID,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "AppRevision_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Rollout" (
    "id" UUID NOT NULL,
    "tenantId" UUID NOT NULL,
    "appId" UUID NOT NULL,
    "kind" "RolloutKind" NOT NULL,
    "fromRevision" INTEGER NOT NULL,
    "toRevision" INTEGER NOT NULL,
    "state" "RolloutState" NOT NULL DEFAULT 'progressing',
    "step" TEXT NOT NULL DEFAULT 'starting',
    "message" TEXT,
    "oldInstances" INTEGER NOT NULL DEFAULT 0,
    "newInstances" INTEGER NOT NULL DEFAULT 0,
    "newReady" INTEGER NOT NULL DEFAULT 0,
    "replicas" INTEGER NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,
    "finishedAt" TIMESTAMP(3),

    CONSTRAINT "Rollout_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "LoadBalancer" (
    "id" UUID NOT NULL,
    "tenantId" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "algorithm" "LbAlgorithm" NOT NULL DEFAULT 'roundrobin',
    "stickySeconds" INTEGER,
    "drainSeconds" INTEGER NOT NULL DEFAULT 10,
    "deletedAt" TIMESTAMP(3),
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "LoadBalancer_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "LbListener" (
    "id" UUID NOT NULL,
    "lbId" UUID NOT NULL,
    "protocol" "LbProtocol" NOT NULL,
    "port" INTEGER NOT NULL,
    "rules" JSONB NOT NULL DEFAULT '[]',

    CONSTRAINT "LbListener_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "AppRevision_appId_revision_key" ON "AppRevision"("appId", "revision");

-- CreateIndex
CREATE INDEX "Rollout_appId_createdAt_idx" ON "Rollout"("appId", "createdAt");

-- CreateIndex
CREATE UNIQUE INDEX "LoadBalancer_tenantId_name_key" ON "LoadBalancer"("tenantId", "name");

-- CreateIndex
CREATE UNIQUE INDEX "LbListener_port_key" ON "LbListener"("port");

-- CreateIndex
CREATE INDEX "LbListener_lbId_idx" ON "LbListener"("lbId");

-- AddForeignKey
ALTER TABLE "AppRevision" ADD CONSTRAINT "AppRevision_appId_fkey" FOREIGN KEY ("appId") REFERENCES "App"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Rollout" ADD CONSTRAINT "Rollout_appId_fkey" FOREIGN KEY ("appId") REFERENCES "App"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "LoadBalancer" ADD CONSTRAINT "LoadBalancer_tenantId_fkey" FOREIGN KEY ("tenantId") REFERENCES "Tenant"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "LbListener" ADD CONSTRAINT "LbListener_lbId_fkey" FOREIGN KEY ("lbId") REFERENCES "LoadBalancer"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- Existing apps: their current spec becomes revision 1 (the hash differs from any computed
-- one, so their first update always rolls out).
INSERT INTO "AppRevision" ("id", "appId", "revision", "spec", "templateHash", "cause")
SELECT gen_random_uuid(), a."id", 1,
  jsonb_build_object('driver', a."driver", 'image', a."image", 'command', a."command", 'args', to_jsonb(a."args"), 'env', a."env",
    'ports', a."ports", 'cpuMillis', a."cpuMillis", 'memoryMb', a."memoryMb", 'restartPolicy', a."restartPolicy", 'stopGraceSeconds', a."stopGraceSeconds"),
  'migrated-' || a."id", 'created'
FROM "App" a;

-- AddForeignKey
ALTER TABLE "Instance" ADD CONSTRAINT "Instance_appId_revision_fkey" FOREIGN KEY ("appId", "revision") REFERENCES "AppRevision"("appId", "revision") ON DELETE CASCADE ON UPDATE CASCADE;
