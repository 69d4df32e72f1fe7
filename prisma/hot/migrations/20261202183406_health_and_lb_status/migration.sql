-- AlterTable
ALTER TABLE "InstanceStatus" ADD COLUMN     "healthFailedAt" TIMESTAMP(3),
ADD COLUMN     "healthMessage" TEXT,
ADD COLUMN     "ready" BOOLEAN;

-- CreateTable
CREATE TABLE "LbNodeStatus" (
    "lbId" UUID NOT NULL,
    "nodeId" UUID NOT NULL,
    "state" TEXT NOT NULL,
    "message" TEXT,
    "generation" INTEGER NOT NULL,
    "updatedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "LbNodeStatus_pkey" PRIMARY KEY ("lbId","nodeId")
);

-- CreateIndex
CREATE INDEX "LbNodeStatus_nodeId_idx" ON "LbNodeStatus"("nodeId");
