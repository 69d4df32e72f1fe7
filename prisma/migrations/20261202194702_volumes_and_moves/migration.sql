-- CreateEnum
CREATE TYPE "VolumeDriver" AS ENUM ('local', 'shared');

-- CreateEnum
CREATE TYPE "MoveReason" AS ENUM ('manual', 'drain', 'node_lost', 'preemption');

-- CreateEnum
CREATE TYPE "MoveState" AS ENUM ('running', 'compensating', 'succeeded', 'failed');

-- CreateEnum
CREATE TYPE "MoveStepState" AS ENUM ('pending', 'running', 'done', 'skipped', 'failed', 'compensating', 'compensated');

-- CreateEnum
CREATE TYPE "CommandState" AS ENUM ('pending', 'sent', 'done', 'failed');

-- AlterTable
ALTER TABLE "App" ADD COLUMN     "stopAfterDisconnect" BOOLEAN NOT NULL DEFAULT false,
ADD COLUMN     "volumes" JSONB NOT NULL DEFAULT '[]';

-- AlterTable
ALTER TABLE "Instance" ADD COLUMN     "paused" BOOLEAN NOT NULL DEFAULT false;

-- AlterTable
ALTER TABLE "Node" ADD COLUMN     "capabilities" JSONB NOT NULL DEFAULT '{}';

-- CreateTable
CREATE TABLE "Volume" (
    "id" UUID NOT NULL,
    "tenantId" UUID NOT NULL,
    "appId" UUID,
    "name" TEXT NOT NULL,
    "ordinal" INTEGER NOT NULL,
    "driver" "VolumeDriver" NOT NULL,
    "sizeMb" INTEGER NOT NULL,
    "mountPath" TEXT NOT NULL,
    "nodeId" UUID,
    "epoch" INTEGER NOT NULL DEFAULT 0,
    "attachedInstanceId" UUID,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Volume_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Reservation" (
    "id" UUID NOT NULL,
    "instanceId" UUID NOT NULL,
    "moveId" UUID NOT NULL,
    "nodeId" UUID NOT NULL,
    "appId" UUID NOT NULL,
    "cpuMillis" INTEGER NOT NULL,
    "memoryMb" INTEGER NOT NULL,
    "hostPorts" INTEGER[],
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Reservation_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Move" (
    "id" UUID NOT NULL,
    "tenantId" UUID NOT NULL,
    "appId" UUID NOT NULL,
    "instanceId" UUID NOT NULL,
    "reason" "MoveReason" NOT NULL,
    "state" "MoveState" NOT NULL DEFAULT 'running',
    "sourceNodeId" UUID NOT NULL,
    "targetNodeId" UUID,
    "step" TEXT NOT NULL,
    "error" TEXT,
    "requestedById" UUID,
    "lastReadyAt" TIMESTAMP(3),
    "firstReadyAt" TIMESTAMP(3),
    "downtimeMs" INTEGER,
    "bytesCopied" BIGINT NOT NULL DEFAULT 0,
    "copyMs" INTEGER NOT NULL DEFAULT 0,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,
    "finishedAt" TIMESTAMP(3),

    CONSTRAINT "Move_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "MoveStep" (
    "id" UUID NOT NULL,
    "moveId" UUID NOT NULL,
    "index" INTEGER NOT NULL,
    "name" TEXT NOT NULL,
    "state" "MoveStepState" NOT NULL DEFAULT 'pending',
    "detail" TEXT,
    "progress" DOUBLE PRECISION,
    "bytes" BIGINT,
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "data" JSONB NOT NULL DEFAULT '{}',
    "error" TEXT,
    "startedAt" TIMESTAMP(3),
    "finishedAt" TIMESTAMP(3),
    "compensatedAt" TIMESTAMP(3),

    CONSTRAINT "MoveStep_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "AgentCommand" (
    "id" UUID NOT NULL,
    "nodeId" UUID NOT NULL,
    "kind" TEXT NOT NULL,
    "payload" JSONB NOT NULL,
    "state" "CommandState" NOT NULL DEFAULT 'pending',
    "result" JSONB,
    "error" TEXT,
    "progress" JSONB,
    "wake" JSONB,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "sentAt" TIMESTAMP(3),
    "doneAt" TIMESTAMP(3),
    "expiresAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "AgentCommand_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "Volume_nodeId_idx" ON "Volume"("nodeId");

-- CreateIndex
CREATE INDEX "Volume_tenantId_idx" ON "Volume"("tenantId");

-- CreateIndex
CREATE UNIQUE INDEX "Volume_appId_name_ordinal_key" ON "Volume"("appId", "name", "ordinal");

-- CreateIndex
CREATE INDEX "Reservation_nodeId_idx" ON "Reservation"("nodeId");

-- CreateIndex
CREATE UNIQUE INDEX "Reservation_moveId_nodeId_key" ON "Reservation"("moveId", "nodeId");

-- CreateIndex
CREATE INDEX "Move_state_idx" ON "Move"("state");

-- CreateIndex
CREATE INDEX "Move_instanceId_idx" ON "Move"("instanceId");

-- CreateIndex
CREATE INDEX "Move_createdAt_idx" ON "Move"("createdAt");

-- CreateIndex
CREATE UNIQUE INDEX "MoveStep_moveId_index_key" ON "MoveStep"("moveId", "index");

-- CreateIndex
CREATE INDEX "AgentCommand_nodeId_state_idx" ON "AgentCommand"("nodeId", "state");

-- AddForeignKey
ALTER TABLE "Volume" ADD CONSTRAINT "Volume_appId_fkey" FOREIGN KEY ("appId") REFERENCES "App"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "MoveStep" ADD CONSTRAINT "MoveStep_moveId_fkey" FOREIGN KEY ("moveId") REFERENCES "Move"("id") ON DELETE CASCADE ON UPDATE CASCADE;
