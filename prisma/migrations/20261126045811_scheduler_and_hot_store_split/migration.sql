/*
  Warnings:

  - The `hostPorts` column on the `Instance` table would be dropped and recreated. This will lead to data loss if there is data in the column.
  - You are about to drop the `Event` table. If the table is not empty, all the data it contains will be lost.
  - You are about to drop the `InstanceStatus` table. If the table is not empty, all the data it contains will be lost.
  - You are about to drop the `NodeStatus` table. If the table is not empty, all the data it contains will be lost.
  - Added the required column `cpuMillis` to the `Instance` table without a default value. This is not possible if the table is not empty.
  - Added the required column `memoryMb` to the `Instance` table without a default value. This is not possible if the table is not empty.

*/
-- Instances are re-derived from apps by the replica controller, so old rows can go.
DELETE FROM "Instance";

-- CreateEnum
CREATE TYPE "PlacementStrategy" AS ENUM ('spread', 'binpack');

-- CreateEnum
CREATE TYPE "SpreadMode" AS ENUM ('none', 'soft', 'hard');

-- CreateEnum
CREATE TYPE "PriorityClass" AS ENUM ('low', 'normal', 'high', 'critical');

-- DropForeignKey
ALTER TABLE "Event" DROP CONSTRAINT "Event_tenantId_fkey";

-- DropForeignKey
ALTER TABLE "InstanceStatus" DROP CONSTRAINT "InstanceStatus_instanceId_fkey";

-- DropForeignKey
ALTER TABLE "NodeStatus" DROP CONSTRAINT "NodeStatus_nodeId_fkey";

-- AlterTable
ALTER TABLE "App" ADD COLUMN     "maxUnavailable" INTEGER NOT NULL DEFAULT 1,
ADD COLUMN     "nodeSelector" JSONB NOT NULL DEFAULT '{}',
ADD COLUMN     "placementStrategy" "PlacementStrategy",
ADD COLUMN     "priorityClass" "PriorityClass" NOT NULL DEFAULT 'normal',
ADD COLUMN     "spread" "SpreadMode" NOT NULL DEFAULT 'soft';

-- AlterTable
ALTER TABLE "Instance" ADD COLUMN     "cpuMillis" INTEGER NOT NULL,
ADD COLUMN     "memoryMb" INTEGER NOT NULL,
ADD COLUMN     "priority" INTEGER NOT NULL DEFAULT 0,
ADD COLUMN     "releasedAt" TIMESTAMP(3),
DROP COLUMN "hostPorts",
ADD COLUMN     "hostPorts" INTEGER[];

-- AlterTable
ALTER TABLE "Node" ADD COLUMN     "draining" BOOLEAN NOT NULL DEFAULT false;

-- AlterTable
ALTER TABLE "Tenant" ADD COLUMN     "placementStrategy" "PlacementStrategy" NOT NULL DEFAULT 'spread';

-- DropTable
DROP TABLE "Event";

-- DropTable
DROP TABLE "InstanceStatus";

-- DropTable
DROP TABLE "NodeStatus";

-- DropEnum
DROP TYPE "NodeState";

-- DropEnum
DROP TYPE "ObservedState";

-- Capacity held on a node: placed and not yet released.
CREATE INDEX "Instance_nodeId_holding_idx" ON "Instance"("nodeId") WHERE "releasedAt" IS NULL;
