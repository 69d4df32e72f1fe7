-- CreateEnum
CREATE TYPE "NetworkMode" AS ENUM ('host', 'overlay');

-- AlterTable
ALTER TABLE "App" ADD COLUMN     "networkId" UUID;

-- AlterTable
ALTER TABLE "Node" ADD COLUMN     "networkMode" "NetworkMode" NOT NULL DEFAULT 'host';

-- AlterTable
ALTER TABLE "Tenant" ADD COLUMN     "quotaNetworks" INTEGER NOT NULL DEFAULT 5;

-- CreateTable
CREATE TABLE "Network" (
    "id" UUID NOT NULL,
    "tenantId" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "cidr" TEXT NOT NULL,
    "vxlanId" INTEGER NOT NULL,
    "isDefault" BOOLEAN NOT NULL DEFAULT false,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Network_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "IpLease" (
    "id" UUID NOT NULL,
    "networkId" UUID NOT NULL,
    "instanceId" UUID NOT NULL,
    "ip" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "IpLease_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "Network_vxlanId_key" ON "Network"("vxlanId");

-- CreateIndex
CREATE UNIQUE INDEX "Network_tenantId_name_key" ON "Network"("tenantId", "name");

-- CreateIndex
CREATE UNIQUE INDEX "IpLease_instanceId_key" ON "IpLease"("instanceId");

-- CreateIndex
CREATE UNIQUE INDEX "IpLease_networkId_ip_key" ON "IpLease"("networkId", "ip");

-- CreateIndex
CREATE INDEX "App_networkId_idx" ON "App"("networkId");

-- AddForeignKey
ALTER TABLE "App" ADD CONSTRAINT "App_networkId_fkey" FOREIGN KEY ("networkId") REFERENCES "Network"("id") ON DELETE NO ACTION ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Network" ADD CONSTRAINT "Network_tenantId_fkey" FOREIGN KEY ("tenantId") REFERENCES "Tenant"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "IpLease" ADD CONSTRAINT "IpLease_networkId_fkey" FOREIGN KEY ("networkId") REFERENCES "Network"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "IpLease" ADD CONSTRAINT "IpLease_instanceId_fkey" FOREIGN KEY ("instanceId") REFERENCES "Instance"("id") ON DELETE CASCADE ON UPDATE CASCADE;
