-- CreateEnum
CREATE TYPE "LogStream" AS ENUM ('stdout', 'stderr');

-- CreateTable
CREATE TABLE "InstanceLog" (
    "id" BIGSERIAL NOT NULL,
    "instanceId" UUID NOT NULL,
    "tenantId" UUID NOT NULL,
    "appId" UUID NOT NULL,
    "stream" "LogStream" NOT NULL,
    "ts" TIMESTAMP(3) NOT NULL,
    "line" TEXT NOT NULL,

    CONSTRAINT "InstanceLog_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "MetricSample" (
    "id" BIGSERIAL NOT NULL,
    "kind" TEXT NOT NULL,
    "subjectId" UUID NOT NULL,
    "appId" UUID,
    "ts" TIMESTAMP(3) NOT NULL,
    "cpuMillis" INTEGER NOT NULL,
    "memoryMb" INTEGER NOT NULL,

    CONSTRAINT "MetricSample_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "InstanceLog_appId_id_idx" ON "InstanceLog"("appId", "id");

-- CreateIndex
CREATE INDEX "InstanceLog_instanceId_id_idx" ON "InstanceLog"("instanceId", "id");

-- CreateIndex
CREATE INDEX "MetricSample_subjectId_ts_idx" ON "MetricSample"("subjectId", "ts");

-- CreateIndex
CREATE INDEX "MetricSample_appId_ts_idx" ON "MetricSample"("appId", "ts");

-- CreateIndex
CREATE INDEX "MetricSample_ts_idx" ON "MetricSample"("ts");
