-- CreateEnum
CREATE TYPE "NodeState" AS ENUM ('ready', 'not_ready');

-- CreateEnum
CREATE TYPE "ObservedState" AS ENUM ('pending', 'pulling', 'starting', 'running', 'stopping', 'stopped', 'exited', 'failed', 'unknown');

-- CreateTable
CREATE TABLE "NodeStatus" (
    "nodeId" UUID NOT NULL,
    "state" "NodeState" NOT NULL DEFAULT 'not_ready',
    "connected" BOOLEAN NOT NULL DEFAULT false,
    "lastHeartbeatAt" TIMESTAMP(3),
    "notReadySince" TIMESTAMP(3),
    "cpuUsedMillis" INTEGER NOT NULL DEFAULT 0,
    "memoryUsedMb" INTEGER NOT NULL DEFAULT 0,
    "appliedGeneration" INTEGER NOT NULL DEFAULT 0,
    "updatedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "NodeStatus_pkey" PRIMARY KEY ("nodeId")
);

-- CreateTable
CREATE TABLE "InstanceStatus" (
    "instanceId" UUID NOT NULL,
    "tenantId" UUID NOT NULL,
    "nodeId" UUID NOT NULL,
    "state" "ObservedState" NOT NULL DEFAULT 'pending',
    "pid" INTEGER,
    "restarts" INTEGER NOT NULL DEFAULT 0,
    "startedAt" TIMESTAMP(3),
    "exitCode" INTEGER,
    "message" TEXT,
    "generation" INTEGER NOT NULL DEFAULT 0,
    "updatedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "InstanceStatus_pkey" PRIMARY KEY ("instanceId")
);

-- CreateTable
CREATE TABLE "Event" (
    "id" BIGSERIAL NOT NULL,
    "tenantId" UUID,
    "kind" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "actorId" UUID,
    "subject" TEXT NOT NULL,
    "message" TEXT NOT NULL,
    "data" JSONB NOT NULL DEFAULT '{}',
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Event_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "InstanceStatus_tenantId_idx" ON "InstanceStatus"("tenantId");

-- CreateIndex
CREATE INDEX "Event_tenantId_id_idx" ON "Event"("tenantId", "id");
