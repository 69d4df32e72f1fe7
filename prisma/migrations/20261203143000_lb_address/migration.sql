-- CreateTable
CREATE TABLE "LbAddress" (
    "id" UUID NOT NULL,
    "networkId" UUID NOT NULL,
    "nodeId" UUID NOT NULL,
    "ip" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "LbAddress_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "LbAddress_networkId_nodeId_key" ON "LbAddress"("networkId", "nodeId");

-- CreateIndex
CREATE UNIQUE INDEX "LbAddress_networkId_ip_key" ON "LbAddress"("networkId", "ip");

-- AddForeignKey
ALTER TABLE "LbAddress" ADD CONSTRAINT "LbAddress_networkId_fkey" FOREIGN KEY ("networkId") REFERENCES "Network"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "LbAddress" ADD CONSTRAINT "LbAddress_nodeId_fkey" FOREIGN KEY ("nodeId") REFERENCES "Node"("id") ON DELETE CASCADE ON UPDATE CASCADE;
