-- CreateTable
CREATE TABLE "LbServerStat" (
    "lbId" UUID NOT NULL,
    "nodeId" UUID NOT NULL,
    "instanceId" UUID NOT NULL,
    "current" INTEGER NOT NULL,
    "perSecond" DOUBLE PRECISION NOT NULL,
    "updatedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "LbServerStat_pkey" PRIMARY KEY ("lbId","nodeId","instanceId")
);

-- CreateIndex
CREATE INDEX "LbServerStat_nodeId_idx" ON "LbServerStat"("nodeId");
