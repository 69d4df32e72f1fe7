-- CreateTable
CREATE TABLE "SchedulerSample" (
    "id" BIGSERIAL NOT NULL,
    "at" TIMESTAMP(3) NOT NULL,
    "tenantId" UUID NOT NULL,
    "placed" INTEGER NOT NULL,
    "p50Ms" INTEGER NOT NULL,
    "p99Ms" INTEGER NOT NULL,

    CONSTRAINT "SchedulerSample_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "SchedulerSample_at_idx" ON "SchedulerSample"("at");
